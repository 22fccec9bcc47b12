/* Probing a server's state for status, lag monitoring and preflight.
 * Threading: a probe owns its own connection; probes may run in parallel. */
#include "probe.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "mem.h"

const char *probe_role_name(enum probe_role r)
{
	switch (r) {
	case PROBE_PRIMARY: return "primary";
	case PROBE_REPLICA: return "replica";
	default: return "other";
	}
}

void probe_db_opts(const struct cfg_cluster *c, const struct cfg_addr *addr,
		   struct db_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->host = addr->host;
	o->port = addr->port;
	o->user = c->user;
	o->password = c->password;
	o->connect_timeout_s = (unsigned)c->connect_timeout_s;
	o->read_timeout_s = (unsigned)c->read_timeout_s;
	o->write_timeout_s = (unsigned)c->write_timeout_s;
	static const char *const modes[] = {
		[CFG_SSL_DISABLED] = "disabled", [CFG_SSL_PREFERRED] = "preferred",
		[CFG_SSL_REQUIRED] = "required", [CFG_SSL_VERIFY_CA] = "verify_ca",
		[CFG_SSL_VERIFY_IDENTITY] = "verify_identity",
	};
	o->ssl_mode = modes[c->ssl_mode];
	o->ssl_ca = c->ssl_ca;
	o->ssl_cert = c->ssl_cert;
	o->ssl_key = c->ssl_key;
}

static void probe_lag(struct probe *p)
{
	const struct db_replica_status *r = &p->repl;

	p->lag_known = false;
	if (p->role != PROBE_REPLICA && !r->configured) {
		p->lag_reason = "not a replica";
		return;
	}
	if (!p->reachable)
		p->lag_reason = "server unreachable";
	else if (err_is_set(&p->query_err))
		p->lag_reason = "replica status unreadable";
	else if (!r->configured)
		p->lag_reason = "replication not configured";
	else if (r->last_sql_errno)
		p->lag_reason = "sql thread stopped by an error";
	else if (r->last_io_errno && !r->io_running)
		p->lag_reason = "io thread stopped by an error";
	else if (!r->sql_running)
		p->lag_reason = "sql thread stopped";
	else if (!r->io_running)
		p->lag_reason = "io thread not running";
	else if (r->seconds_behind < 0)
		p->lag_reason = "server reports no lag value";
	else {
		p->lag_known = true;
		p->lag_s = (double)r->seconds_behind;
		p->lag_reason = NULL;
	}
}

int probe_server(const struct cfg_cluster *c, const struct cfg_addr *addr,
		 enum probe_role role, struct probe *p, struct err *e)
{
	struct db_opts o;
	struct db *d = NULL;
	bool found = false;

	memset(p, 0, sizeof(*p));
	cfg_addr_format(addr, p->addr, sizeof(p->addr));
	p->role = role;
	probe_db_opts(c, addr, &o);
	if (db_connect(&o, &d, &p->conn_err) != 0) {
		probe_lag(p);
		return 0;
	}
	p->reachable = true;
	p->flavor = db_flavor(d);
	str_copy(p->version, sizeof(p->version), db_version_string(d));
	p->server_id = db_server_id(d);

	if (db_read_only(d, &p->read_only, &p->query_err) == 0 &&
	    db_gtid_position(d, &p->gtid_executed, &p->query_err) == 0 &&
	    db_query_value(d, p->flavor == DB_FLAVOR_MYSQL
			   ? "SELECT @@GLOBAL.gtid_executed"
			   : "SELECT @@GLOBAL.gtid_binlog_pos",
			   &p->gtid_binlog_pos, &found, &p->query_err) == 0)
		db_replica_status(d, &p->repl, &p->query_err);
	db_close(d);
	probe_lag(p);
	return 0;
}

void probe_release(struct probe *p)
{
	if (!p)
		return;
	free(p->gtid_binlog_pos);
	free(p->gtid_executed);
	db_replica_status_release(&p->repl);
	p->gtid_binlog_pos = p->gtid_executed = NULL;
}
