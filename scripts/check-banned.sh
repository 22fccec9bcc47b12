#!/bin/sh
# Fails when our C code uses functions that invite overflows or are not
# thread-safe (as curl and git ban them). Use struct buf, str_copy,
# str_to_long, gmtime_r/localtime_r instead.
cd "$(dirname "$0")/.." || exit 1
hits=$(grep -nE '\<(strcpy|strcat|sprintf|vsprintf|gets|atoi|atol|gmtime|localtime|strtok|strerror|asctime|ctime)[[:space:]]*\(' \
	lib/*.c lib/*/*.c backupd/*.c restore/*.c schedules/*.c cli/*.c 2>/dev/null)
if [ -n "$hits" ]; then
	echo "banned functions used:" >&2
	echo "$hits" >&2
	exit 1
fi
