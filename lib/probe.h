/* One look at one server: reachable or not, flavor/version, read_only,
 * GTID positions, replication threads and lag. Shared by `backupctl status`,
 * the lag monitor and cutover preflight so all of them judge a server the
 * same way. */
#ifndef BACKUPD_PROBE_H
#define BACKUPD_PROBE_H

#include <stdbool.h>

#include "config.h"
#include "db.h"
#include "err.h"

enum probe_role { PROBE_PRIMARY, PROBE_REPLICA, PROBE_OTHER };

struct probe {
	char addr[300];
	enum probe_role role;
	bool reachable;
	struct err conn_err;             /* why not reachable */
	enum db_flavor flavor;
	char version[128];
	unsigned long server_id;
	bool read_only;
	char *gtid_binlog_pos;           /* heap; NULL when unknown */
	char *gtid_executed;             /* what the server has applied */
	struct db_replica_status repl;   /* repl.configured false if none */
	/* Lag: a number only when both threads run and the server reports
	 * one; otherwise unbounded with the reason. Never a silent 0. */
	bool lag_known;
	double lag_s;
	const char *lag_reason;          /* static text when !lag_known */
	struct err query_err;            /* a query failed after connecting */
};

/* Connects with the cluster's credentials and fills p. Connection or query
 * failures are recorded in p, not returned: probing a down server is a
 * normal outcome. Returns non-zero only on internal errors. */
int probe_server(const struct cfg_cluster *c, const struct cfg_addr *addr,
		 enum probe_role role, struct probe *p, struct err *e);
void probe_release(struct probe *p);

/* Fills db_opts from a cluster's settings for one address. host must stay
 * valid while opts are used. */
void probe_db_opts(const struct cfg_cluster *c, const struct cfg_addr *addr,
		   struct db_opts *o);

const char *probe_role_name(enum probe_role r);

#endif
