# backupd — build, test, sanitizer and valgrind runs, bench, demo, install.
# `make` builds build/backupd and build/backupctl; `make test` runs unit and
# integration tests against real servers started by tests/env/.

PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build
CC      ?= cc

PKGS    := libmariadb libnfs libzstd libcurl sqlite3 inih jansson libmicrohttpd libxxhash
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS))

WARN    := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wvla -Wpointer-arith \
           -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
CFLAGS  ?= -O2 -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 $(WARN) $(CFLAGS) \
              $(SAN_CFLAGS) -Ilib -Ibackupd -Irestore -Ischedules -I$(BUILD)/gen $(PKG_CFLAGS) -pthread -MMD -MP
LDLIBS  := $(PKG_LIBS) -pthread -lm

LIB_SRC     := $(wildcard lib/*.c lib/*/*.c) $(BUILD)/gen/migrations.c
DAEMON_SRC  := $(filter-out backupd/main.c,$(wildcard backupd/*.c))
RESTORE_SRC := $(wildcard restore/*.c)
SCHED_SRC   := $(wildcard schedules/*.c)
CLI_SRC     := $(wildcard cli/*.c)
UNIT_SRC    := $(wildcard tests/unit/test_*.c)
MIGRATIONS  := $(sort $(wildcard sql/catalog/*.sql))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(patsubst $(BUILD)/%,%,$(1)))

LIB_OBJ     := $(call obj,$(LIB_SRC))
DAEMON_OBJ  := $(call obj,$(DAEMON_SRC))
RESTORE_OBJ := $(call obj,$(RESTORE_SRC))
SCHED_OBJ   := $(call obj,$(SCHED_SRC))
CLI_OBJ     := $(call obj,$(CLI_SRC))
UNIT_BIN    := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
# Everything below lib/ links in this order: later archives serve earlier.
ARCHIVES    := $(BUILD)/libdaemon.a $(BUILD)/librestore.a $(BUILD)/libsched.a $(BUILD)/libcore.a

.SECONDARY:
.PHONY: all test unit integration check-asan check-valgrind check-banned \
        bench demo install clean fuzz
all: $(BUILD)/backupd $(BUILD)/backupctl

$(BUILD)/gen/migrations.c: $(MIGRATIONS) scripts/embed-sql.sh
	@mkdir -p $(dir $@)
	scripts/embed-sql.sh $@ $(MIGRATIONS)

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/libcore.a: $(LIB_OBJ)
$(BUILD)/libdaemon.a: $(DAEMON_OBJ)
$(BUILD)/librestore.a: $(RESTORE_OBJ)
$(BUILD)/libsched.a: $(SCHED_OBJ)
$(BUILD)/%.a:
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

# A group: the engines call each other's public APIs (a drill restores and
# verifies), whatever the archive order.
LINK_ARCHIVES := -Wl,--start-group $(ARCHIVES) -Wl,--end-group

$(BUILD)/backupd: $(BUILD)/obj/backupd/main.o $(ARCHIVES)
	$(CC) $(ALL_CFLAGS) $(SAN_LDFLAGS) -o $@ $< $(LINK_ARCHIVES) $(LDLIBS)

$(BUILD)/backupctl: $(CLI_OBJ) $(ARCHIVES)
	$(CC) $(ALL_CFLAGS) $(SAN_LDFLAGS) -o $@ $(CLI_OBJ) $(LINK_ARCHIVES) $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(ARCHIVES)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN_LDFLAGS) -o $@ $< $(LINK_ARCHIVES) $(LDLIBS) -lcmocka

$(BUILD)/tests/sink: tests/env/sink.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -o $@ $< \
		$(shell pkg-config --cflags --libs libmicrohttpd)

check-banned:
	@scripts/check-banned.sh

# The README's test command. Starts the real servers once, runs unit and
# integration tests, prints "N passed, N failed".
test: all $(UNIT_BIN) check-banned
	BUILD=$(BUILD) tests/run.sh

unit: all $(UNIT_BIN)
	BUILD=$(BUILD) tests/run.sh --unit-only

check-asan:
	$(MAKE) BUILD=build-asan CC=clang \
	  SAN_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  SAN_LDFLAGS="-fsanitize=address,undefined" CFLAGS="-O1 -g" test

check-valgrind: all $(UNIT_BIN)
	BUILD=$(BUILD) TEST_WRAPPER="valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --suppressions=tests/valgrind.supp" \
	  tests/run.sh

# Builds what each target needs itself (clang, libFuzzer, ASan+UBSan) and
# runs every target for FUZZ_SECONDS (default 30).
fuzz:
	BUILD=build-fuzz tests/fuzz/run.sh

bench: all
	bench/run.sh

demo: all
	scripts/demo.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/backupd/sql
	install -m 755 $(BUILD)/backupd $(BUILD)/backupctl $(DESTDIR)$(PREFIX)/bin/
	cp -r sql/mysql $(DESTDIR)$(PREFIX)/share/backupd/sql/
	install -d $(DESTDIR)$(PREFIX)/share/doc/backupd
	install -m 644 README.md deploy/backupd.conf.example $(DESTDIR)$(PREFIX)/share/doc/backupd/

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
