/* HAProxy runtime API over its admin socket (`stats socket ... level admin`):
 * one command per connection, the reply read until HAProxy closes it.
 * Cutover switches the writer with it and canary moves read weights.
 *
 * Pure parts (reply parsing, address matching) are separate from the socket
 * I/O so they can be unit-tested. Names of backends and servers go into a
 * command line, so they are checked against HAProxy's identifier characters
 * before any command is built (no ';' or spaces can smuggle a second
 * command in). No state, no threads: safe from any thread. */
#ifndef BACKUPD_HAPROXY_H
#define BACKUPD_HAPROXY_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define HAPROXY_TIMEOUT_MS_DEFAULT 5000
#define HAPROXY_REPLY_MAX (4u * 1024u * 1024u) /* bytes of one reply */
#define HAPROXY_SERVERS_MAX 100000             /* lines of "show servers state" */
#define HAPROXY_WEIGHT_MAX 256                 /* HAProxy's own limit */
#define HAPROXY_NAME_MAX 128                   /* bytes of a backend/server name */

/* srv_admin_state bits (HAProxy 2.x src/server.h). */
#define HAPROXY_ADMF_FMAINT 0x01   /* forced into maintenance (runtime) */
#define HAPROXY_ADMF_IMAINT 0x02   /* inherited from a tracked server */
#define HAPROXY_ADMF_CMAINT 0x04   /* `disabled` in the config (a marker only) */
#define HAPROXY_ADMF_FDRAIN 0x08
#define HAPROXY_ADMF_IDRAIN 0x10
#define HAPROXY_ADMF_RMAINT 0x20   /* address resolution failed */
#define HAPROXY_ADMF_MAINT 0x23    /* any maintenance flag */
#define HAPROXY_ADMF_DRAIN 0x18    /* any drain flag */

/* srv_op_state values. */
enum haproxy_op_state {
	HAPROXY_OP_STOPPED = 0,
	HAPROXY_OP_STARTING = 1,
	HAPROXY_OP_RUNNING = 2,
	HAPROXY_OP_STOPPING = 3,
};

/* One line of "show servers state". */
struct haproxy_server {
	int backend_id;
	char backend[HAPROXY_NAME_MAX];
	int id;
	char name[HAPROXY_NAME_MAX];
	char addr[64];        /* srv_addr: the address HAProxy connects to */
	char fqdn[256];       /* srv_fqdn, "" when HAProxy prints "-" */
	unsigned port;        /* srv_port */
	int op_state;         /* enum haproxy_op_state */
	int admin_state;      /* HAPROXY_ADMF_* bits */
	int weight;           /* srv_uweight: the current (user) weight */
	int initial_weight;   /* srv_iweight: the weight of the config */
};

/* Sends cmd (one line, no newline inside) and reads the whole reply.
 * *reply is the reply text (caller frees), never NULL on success. ERR_IO
 * when the socket cannot be reached or the reply does not arrive within
 * timeout_ms (0: HAPROXY_TIMEOUT_MS_DEFAULT); the message names the socket
 * path. ERR_USAGE for a command with a newline or NUL. */
int haproxy_command(const char *socket_path, const char *cmd, int timeout_ms,
		    char **reply, struct err *e);
/* As haproxy_command for commands that answer nothing on success (set
 * server, set weight, shutdown sessions): any other reply is the error
 * HAProxy gives, as ERR_REFUSED "haproxy refused '<cmd>': <reply>". */
int haproxy_exec(const char *socket_path, const char *cmd, int timeout_ms,
		 struct err *e);

/* Parses the output of "show servers state [backend]" (format version 1,
 * columns found by the header line). Caller frees *out with free(); *n may
 * be 0. ERR_CORRUPT for an unknown format version, a missing column or a
 * malformed number; ERR_REFUSED when the reply is an error message such as
 * "Can't find backend.". */
int haproxy_parse_servers_state(const char *text, struct haproxy_server **out,
				size_t *n, struct err *e);
/* "show servers state [backend]" (backend NULL: all), parsed. */
int haproxy_servers_state(const char *socket_path, const char *backend,
			  int timeout_ms, struct haproxy_server **out,
			  size_t *n, struct err *e);

/* The first server of backend (NULL: any) that listens on host:port.
 * host matches srv_addr as an address (textually different spellings of
 * one IPv4/IPv6 address match) or srv_fqdn case-insensitively; a host that
 * is a name and matches neither is resolved (getaddrinfo) and compared by
 * address. NULL when none matches. */
const struct haproxy_server *haproxy_find_server(const struct haproxy_server *s,
						 size_t n, const char *backend,
						 const char *host,
						 unsigned port);
/* Server admin state words: "maint", "drain" or "ready". */
const char *haproxy_admin_state_name(int admin_state);
/* "stopped", "starting", "running", "stopping" or "unknown". */
const char *haproxy_op_state_name(int op_state);
bool haproxy_in_maint(const struct haproxy_server *s);

/* Backend and server names may hold only letters, digits and - _ . :
 * (HAProxy's identifier characters), 1..HAPROXY_NAME_MAX-1 bytes.
 * ERR_USAGE otherwise, naming what and which. */
int haproxy_check_name(const char *what, const char *name, struct err *e);

/* set server BACKEND/SERVER state ready|drain|maint. */
int haproxy_set_state(const char *socket_path, const char *backend,
		      const char *server, const char *state, int timeout_ms,
		      struct err *e);
/* shutdown sessions server BACKEND/SERVER: established client sessions of
 * the server are closed, so clients reconnect to the new one. */
int haproxy_shutdown_sessions(const char *socket_path, const char *backend,
			      const char *server, int timeout_ms,
			      struct err *e);
/* set weight BACKEND/SERVER W (absolute, 0..HAPROXY_WEIGHT_MAX). */
int haproxy_set_weight(const char *socket_path, const char *backend,
		       const char *server, int weight, int timeout_ms,
		       struct err *e);
/* get weight BACKEND/SERVER: current and initial weight. */
int haproxy_get_weight(const char *socket_path, const char *backend,
		       const char *server, int *weight, int *initial_weight,
		       int timeout_ms, struct err *e);
/* Parses a "get weight" reply "12 (initial 100)". ERR_REFUSED when the
 * reply is an error message, ERR_CORRUPT when it is neither. */
int haproxy_parse_weight(const char *reply, int *weight, int *initial_weight,
			 struct err *e);

#endif
