/* backupctl status: probe the primary and every replica of each cluster and
 * show reachability, version, read_only, replication threads, last errors,
 * lag and GTID positions. Exit 0 when everything is up and replicating,
 * 5 (db-connect) when a server is unreachable, 18 (replication) when a
 * replica is not replicating -- so monitoring scripts can use it. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog.h"
#include "cli.h"
#include "cutover.h"
#include "log.h"
#include "mem.h"
#include "probe.h"

struct status_opts {
	const char *cluster;
};

static int status_opt(int opt, const char *arg, void *u)
{
	struct status_opts *o = u;
	if (opt != 'C')
		return -1;
	o->cluster = arg;
	return 0;
}

static const char *flavor_name(enum db_flavor f)
{
	switch (f) {
	case DB_FLAVOR_MARIADB: return "mariadb";
	case DB_FLAVOR_MYSQL: return "mysql";
	default: return "unknown";
	}
}

static json_t *jstr_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *status_probe_json(const struct probe *p)
{
	json_t *o = json_object();
	json_object_set_new(o, "address", json_string(p->addr));
	json_object_set_new(o, "role", json_string(probe_role_name(p->role)));
	json_object_set_new(o, "reachable", json_boolean(p->reachable));
	if (!p->reachable) {
		json_object_set_new(o, "error", json_string(p->conn_err.msg));
		json_object_set_new(o, "errno", json_integer(p->conn_err.db_errno));
	} else {
		json_object_set_new(o, "flavor", json_string(flavor_name(p->flavor)));
		json_object_set_new(o, "version", json_string(p->version));
		json_object_set_new(o, "server_id", json_integer((json_int_t)p->server_id));
		json_object_set_new(o, "read_only", json_boolean(p->read_only));
		json_object_set_new(o, "gtid_binlog_pos", jstr_or_null(p->gtid_binlog_pos));
		json_object_set_new(o, "gtid_executed", jstr_or_null(p->gtid_executed));
		if (err_is_set(&p->query_err))
			json_object_set_new(o, "error", json_string(p->query_err.msg));
	}
	if (p->reachable && p->repl.configured) {
		const struct db_replica_status *r = &p->repl;
		json_t *rj = json_object();
		char src[300];
		snprintf(src, sizeof(src), "%s:%u", r->source_host, r->source_port);
		json_object_set_new(rj, "source", json_string(src));
		json_object_set_new(rj, "io_running", json_boolean(r->io_running));
		json_object_set_new(rj, "io_state", json_string(r->io_state_raw));
		json_object_set_new(rj, "sql_running", json_boolean(r->sql_running));
		json_object_set_new(rj, "sql_state", json_string(r->sql_state));
		json_object_set_new(rj, "last_io_errno", json_integer(r->last_io_errno));
		json_object_set_new(rj, "last_io_error", json_string(r->last_io_error));
		json_object_set_new(rj, "last_sql_errno", json_integer(r->last_sql_errno));
		json_object_set_new(rj, "last_sql_error", json_string(r->last_sql_error));
		json_object_set_new(rj, "seconds_behind",
				    r->seconds_behind < 0 ? json_null()
							  : json_integer(r->seconds_behind));
		json_object_set_new(rj, "using_gtid", json_boolean(r->using_gtid));
		json_object_set_new(rj, "gtid_io_pos", jstr_or_null(r->gtid_io_pos));
		json_object_set_new(rj, "gtid_slave_pos", jstr_or_null(r->gtid_executed));
		json_object_set_new(o, "replication", rj);
	} else {
		json_object_set_new(o, "replication", json_null());
	}
	if (p->role == PROBE_REPLICA || p->repl.configured) {
		json_t *lag = json_object();
		json_object_set_new(lag, "known", json_boolean(p->lag_known));
		json_object_set_new(lag, "seconds", p->lag_known ? json_real(p->lag_s) : json_null());
		json_object_set_new(lag, "unbounded", json_boolean(!p->lag_known));
		json_object_set_new(lag, "reason", jstr_or_null(p->lag_reason));
		json_object_set_new(lag, "source", json_string("seconds_behind_master"));
		json_object_set_new(o, "lag", lag);
	}
	return o;
}

static void status_probe_text(const struct probe *p, FILE *out)
{
	fprintf(out, "  %-8s %-21s ", probe_role_name(p->role), p->addr);
	if (!p->reachable) {
		fprintf(out, "DOWN  %s\n", p->conn_err.msg);
		return;
	}
	fprintf(out, "up    %s %s  server_id=%lu  %s\n", flavor_name(p->flavor),
		p->version, p->server_id, p->read_only ? "read-only" : "writable");
	fprintf(out, "           gtid_binlog_pos=%s  executed=%s\n",
		p->gtid_binlog_pos && *p->gtid_binlog_pos ? p->gtid_binlog_pos : "-",
		p->gtid_executed && *p->gtid_executed ? p->gtid_executed : "-");
	if (err_is_set(&p->query_err))
		fprintf(out, "           error: %s\n", p->query_err.msg);
	if (p->repl.configured) {
		const struct db_replica_status *r = &p->repl;
		fprintf(out, "           replicates from %s:%u  io=%s (%s)  sql=%s\n",
			r->source_host, r->source_port,
			r->io_running ? "running" : "STOPPED", r->io_state_raw,
			r->sql_running ? "running" : "STOPPED");
		if (r->last_io_errno)
			fprintf(out, "           last io error %u: %s\n",
				r->last_io_errno, r->last_io_error);
		if (r->last_sql_errno)
			fprintf(out, "           last sql error %u: %s\n",
				r->last_sql_errno, r->last_sql_error);
	}
	if (p->role == PROBE_REPLICA || p->repl.configured) {
		if (p->lag_known)
			fprintf(out, "           lag %.0f s\n", p->lag_s);
		else
			fprintf(out, "           lag UNBOUNDED: %s\n", p->lag_reason);
	}
}

int cli_status(struct cli_ctx *ctx, int argc, char **argv, struct err *e)
{
	static const struct option longopts[] = {
		{ "cluster", required_argument, NULL, 'C' },
		{ NULL, 0, NULL, 0 },
	};
	struct status_opts so = { 0 };
	const struct cli_verb *v = NULL;
	int first, rc;
	int worst = 0;
	json_t *root = NULL, *clusters = NULL;

	for (unsigned i = 0; i < cli_n_verbs; i++)
		if (strcmp(cli_verbs[i].name, "status") == 0)
			v = &cli_verbs[i];
	rc = cli_parse(ctx, v, argc, argv, NULL, longopts, status_opt, &so,
		       &first, e);
	if (rc)
		return rc;
	if (first < argc)
		return err_set(e, ERR_USAGE, "unexpected argument '%s'", argv[first]);
	rc = cli_load_config(ctx, e);
	if (rc)
		return rc;
	if (so.cluster && !config_find_cluster(ctx->cfg, so.cluster))
		return err_set(e, ERR_NOT_FOUND, "no cluster '%s' in config '%s'",
			       so.cluster, ctx->cfg->path);

	/* The catalog only when it exists: status never creates one. */
	struct catalog *cat = NULL;
	if (access(ctx->cfg->catalog, F_OK) == 0) {
		struct err ce;
		err_init(&ce);
		if (catalog_open(ctx->cfg->catalog, &cat, &ce) != 0)
			log_warn("status", "catalog not readable: %s", ce.msg);
	}
	if (ctx->json) {
		root = json_object();
		clusters = json_array();
		json_object_set_new(root, "clusters", clusters);
	}
	for (size_t ci = 0; ci < ctx->cfg->n_clusters; ci++) {
		const struct cfg_cluster *c = &ctx->cfg->clusters[ci];
		size_t n = 1 + c->n_replicas;
		struct probe *pr;
		json_t *cj = NULL, *servers = NULL;

		if (so.cluster && strcmp(so.cluster, c->name) != 0)
			continue;
		/* The writer is the catalog's topology after a cutover, else the
		 * config's primary; every other configured server is a replica. */
		struct cfg_addr cur, *addrs;
		bool from_cat = false;
		struct err te;
		err_init(&te);
		if (cutover_effective_primary(c, cat, &cur, &from_cat, &te) != 0)
			cur = c->primary;
		addrs = xcalloc(n, sizeof(*addrs));
		addrs[0] = cur;
		for (size_t i = 0, k = 1; i < n; i++) {
			const struct cfg_addr *a = i == 0 ? &c->primary : &c->replicas[i - 1];
			if (!cfg_addr_equal(a, &cur) && k < n)
				addrs[k++] = *a;
		}
		pr = xcalloc(n, sizeof(*pr));
		for (size_t i = 0; i < n && rc == 0; i++)
			rc = probe_server(c, &addrs[i], i == 0 ? PROBE_PRIMARY : PROBE_REPLICA,
					  &pr[i], e);
		char caddr[300];
		cfg_addr_format(&cur, caddr, sizeof(caddr));
		json_t *last = NULL, *weights = NULL;
		if (cat)
			cutover_last_json(cat, c->name, &last, &te);
		err_init(&te);
		if (c->haproxy_socket && cutover_haproxy_weights(c, &weights, &te) != 0)
			weights = json_pack("{s:s}", "error", te.msg);
		free(addrs);
		if (ctx->json) {
			char paddr[300];
			cfg_addr_format(&c->primary, paddr, sizeof(paddr));
			cj = json_object();
			servers = json_array();
			json_object_set_new(cj, "name", json_string(c->name));
			json_object_set_new(cj, "primary", json_string(paddr));
			json_object_set_new(cj, "current_primary", json_string(caddr));
			json_object_set_new(cj, "current_primary_source",
					    json_string(from_cat ? "catalog" : "config"));
			json_object_set_new(cj, "last_cutover", last ? json_incref(last) : json_null());
			json_object_set_new(cj, "haproxy", weights ? json_incref(weights) : json_null());
			json_object_set_new(cj, "servers", servers);
			json_array_append_new(clusters, cj);
		} else {
			printf("cluster %s  (writer %s, from the %s)\n", c->name, caddr,
			       from_cat ? "catalog after a cutover" : "config");
			if (last) {
				json_t *wp = json_object_get(last, "write_pause_ms");
				printf("  last cutover: %s -> %s, %s",
				       json_string_value(json_object_get(last, "from")) ?: "?",
				       json_string_value(json_object_get(last, "to")) ?: "?",
				       json_string_value(json_object_get(last, "result")) ?: "?");
				if (json_is_number(wp))
					printf(", write pause %.1f ms", json_number_value(wp));
				printf("\n");
			}
			if (weights && json_object_get(weights, "error")) {
				printf("  haproxy  unreachable: %s\n",
				       json_string_value(json_object_get(weights, "error")));
			} else if (weights) {
				static const char *const sides[] = { "writer", "read" };
				for (size_t si = 0; si < 2; si++) {
					json_t *be = json_object_get(weights, sides[si]), *it;
					size_t wi;
					if (!json_is_object(be))
						continue;
					printf("  haproxy  %s backend '%s':", sides[si],
					       json_string_value(json_object_get(be, "backend")) ?: "?");
					json_array_foreach(json_object_get(be, "servers"), wi, it)
						printf("%s %s %s %s %.0f%%", wi ? "," : "",
						       json_string_value(json_object_get(it, "name")) ?: "?",
						       json_string_value(json_object_get(it, "address")) ?: "?",
						       json_string_value(json_object_get(it, "state")) ?: "?",
						       json_number_value(json_object_get(it, "share_pct")));
					printf("\n");
				}
			}
		}
		json_decref(last);
		json_decref(weights);
		for (size_t i = 0; i < n; i++) {
			if (!pr[i].reachable)
				worst = ERR_DB_CONNECT;
			else if (pr[i].role == PROBE_REPLICA && !pr[i].lag_known &&
				 worst == 0)
				worst = ERR_REPLICATION;
			if (ctx->json)
				json_array_append_new(servers, status_probe_json(&pr[i]));
			else
				status_probe_text(&pr[i], stdout);
			probe_release(&pr[i]);
		}
		free(pr);
		if (rc)
			break;
	}
	/* Live figures from a running daemon: heartbeat lag, jobs, schedules. */
	{
		json_t *reply = NULL;
		struct err de;
		err_init(&de);
		if (rc == 0 && cli_daemon_call(ctx, json_pack("{s:s}", "verb", "status"), &reply, &de) == 0) {
			if (ctx->json) {
				json_object_del(reply, "ok");
				json_object_set(root, "daemon", reply);
			} else {
				json_t *it;
				size_t i;
				printf("daemon pid %lld (config %s)\n",
				       (long long)json_integer_value(json_object_get(reply, "pid")),
				       json_string_value(json_object_get(reply, "config")));
				json_array_foreach(json_object_get(reply, "lag"), i, it) {
					json_t *lv = json_object_get(it, "lag_s");
					bool known = json_is_true(json_object_get(it, "known"));
					const char *why = json_string_value(json_object_get(it, "reason"));
					printf("  lag      %-21s %-6s ", json_string_value(json_object_get(it, "server")),
					       json_string_value(json_object_get(it, "state")));
					if (json_is_number(lv))
						printf("%s%.3f s", known ? "" : ">= ", json_number_value(lv));
					else
						printf("unknown");
					printf("%s%s%s (heartbeat)\n", why && *why ? "  " : "", why ? why : "", "");
				}
				json_array_foreach(json_object_get(reply, "jobs"), i, it)
					printf("  running  %s of %s (%s)\n",
					       json_string_value(json_object_get(it, "kind")),
					       json_string_value(json_object_get(it, "cluster")),
					       json_string_value(json_object_get(it, "trigger")));
			}
		} else if (ctx->json) {
			json_object_set_new(root, "daemon", json_null());
		}
		json_decref(reply);
	}
	if (ctx->json) {
		json_object_set_new(root, "healthy", json_boolean(worst == 0));
		json_dumpf(root, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(root);
	}
	catalog_close(cat);
	if (rc == 0 && worst != 0) {
		fflush(stdout);
		/* The report is printed; the status tells scripts it is degraded. */
		return err_set(e, worst, "cluster not healthy: %s",
			       worst == ERR_DB_CONNECT ? "a server is unreachable"
						       : "a replica is not replicating");
	}
	return rc;
}
