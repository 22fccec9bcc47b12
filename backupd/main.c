/* backupd: the daemon's entry point. Validates the config and the catalog
 * (--check stops there), then runs the daemon in the foreground until
 * SIGTERM (systemd, containers). mysql_library_init and curl_global_init
 * happen here, once, before any thread starts. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <mysql.h>

#include "catalog.h"
#include "config.h"
#include "daemon.h"
#include "err.h"
#include "log.h"

static void backupd_usage(FILE *out)
{
	fprintf(out,
		"usage: backupd [-c PATH] [--check] [--pid-file PATH]\n\n"
		"  -c, --config PATH   config file (else $BACKUPD_CONFIG, else /etc/backupd/backupd.conf)\n"
		"      --check         validate the config and the catalog, then exit\n"
		"      --pid-file PATH write the daemon's pid there\n"
		"  -h, --help          this help\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'k' },
		{ "pid-file", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cfg_path = NULL;
	bool check = false;
	const char *pid_file = NULL;
	struct config *cfg = NULL;
	struct catalog *cat = NULL;
	struct err e;
	int c, rc;

	err_init(&e);
	/* A server or NFS peer that goes away must turn into an error, not
	 * kill the process. */
	signal(SIGPIPE, SIG_IGN);
	opterr = 0;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': cfg_path = optarg; break;
		case 'k': check = true; break;
		case 'p': pid_file = optarg; break;
		case 'h': backupd_usage(stdout); return 0;
		default:
			fprintf(stderr, "backupd: unknown option '%s' (see backupd --help)\n",
				argv[optind - 1]);
			return err_exit_status(ERR_USAGE);
		}
	}
	if (mysql_library_init(0, NULL, NULL) != 0) {
		fprintf(stderr, "backupd: unable to initialise the MySQL client library\n");
		return err_exit_status(ERR_INTERNAL);
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);

	rc = config_load(config_resolve_path(cfg_path), &cfg, &e);
	if (rc == 0) {
		log_setup(cfg->log_level, cfg->log_format);
		rc = catalog_open(cfg->catalog, &cat, &e);
	}
	if (rc == 0 && check) {
		log_info("main", "config '%s' and catalog '%s' (schema %d) are valid",
			 cfg->path, cfg->catalog, catalog_schema_version(cat));
	} else if (rc == 0) {
		catalog_close(cat);
		cat = NULL;
		rc = daemon_run(cfg->path, pid_file, &e);
	}
	if (rc)
		fprintf(stderr, "backupd: %s\n", e.msg);
	catalog_close(cat);
	config_free(cfg);
	curl_global_cleanup();
	mysql_library_end();
	return rc ? err_exit_status(e.code) : 0;
}
