-- 001_initial: the whole catalog schema of the first release.
-- Times are unix seconds (UTC) stored as REAL; see sql/catalog/README.md.
-- Never edit this file once released: add 002_*.sql instead.

-- Small key/value facts about the catalog itself (which repository it indexes,
-- when it was last rebuilt from that repository, ...).
CREATE TABLE catalog_meta (
	key        TEXT PRIMARY KEY,
	value      TEXT NOT NULL,
	updated_at REAL NOT NULL
) STRICT;

CREATE TABLE clusters (
	name       TEXT PRIMARY KEY,
	created_at REAL NOT NULL
) STRICT;

CREATE TABLE servers (
	id           INTEGER PRIMARY KEY,
	cluster      TEXT NOT NULL REFERENCES clusters(name) ON DELETE CASCADE,
	address      TEXT NOT NULL,
	role         TEXT NOT NULL
	             CHECK (role IN ('primary', 'replica', 'drill', 'spare')),
	flavor       TEXT,
	version      TEXT,
	server_id    INTEGER,
	last_seen_at REAL,
	created_at   REAL NOT NULL,
	updated_at   REAL NOT NULL,
	UNIQUE (cluster, address)
) STRICT;

CREATE TABLE topology (
	cluster          TEXT PRIMARY KEY REFERENCES clusters(name) ON DELETE CASCADE,
	primary_addr     TEXT NOT NULL,
	previous_primary TEXT,
	changed_at       REAL NOT NULL
) STRICT;

CREATE TABLE jobs (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	kind          TEXT NOT NULL
	              CHECK (kind IN ('snapshot', 'verify', 'prune', 'drill',
	                              'restore', 'rebuild', 'cutover')),
	cluster       TEXT,
	triggered_by  TEXT NOT NULL
	              CHECK (triggered_by IN ('manual', 'schedule', 'daemon')),
	schedule      TEXT,
	target        TEXT,
	status        TEXT NOT NULL DEFAULT 'running'
	              CHECK (status IN ('running', 'ok', 'failed', 'skipped', 'aborted')),
	started_at    REAL NOT NULL,
	finished_at   REAL,
	error_code    INTEGER,
	error_message TEXT,
	pid           INTEGER,
	host          TEXT,
	CHECK ((status = 'running') = (finished_at IS NULL))
) STRICT;
CREATE INDEX jobs_kind_cluster_started ON jobs(kind, cluster, started_at);
CREATE INDEX jobs_started ON jobs(started_at);
-- One job of a kind per cluster at a time, enforced across processes
-- (backupctl by hand and the daemon's schedules). Restores and rebuilds are
-- keyed by their target server instead and may run side by side.
CREATE UNIQUE INDEX jobs_one_running ON jobs(kind, IFNULL(cluster, ''))
	WHERE status = 'running'
	  AND kind IN ('snapshot', 'verify', 'prune', 'drill', 'cutover');
CREATE UNIQUE INDEX jobs_one_running_target ON jobs(kind, IFNULL(target, ''))
	WHERE status = 'running' AND kind IN ('restore', 'rebuild');

CREATE TABLE snapshots (
	id             TEXT PRIMARY KEY,
	cluster        TEXT NOT NULL REFERENCES clusters(name),
	status         TEXT NOT NULL DEFAULT 'running'
	               CHECK (status IN ('running', 'complete', 'failed',
	                                 'aborted', 'deleted')),
	reason         TEXT,
	job_id         INTEGER REFERENCES jobs(id) ON DELETE SET NULL,
	source_server  TEXT,
	server_flavor  TEXT,
	server_version TEXT,
	server_id      INTEGER,
	gtid           TEXT,
	binlog_file    TEXT,
	binlog_pos     INTEGER,
	started_at     REAL NOT NULL,
	finished_at    REAL,
	bytes_raw      INTEGER NOT NULL DEFAULT 0,
	bytes_stored   INTEGER NOT NULL DEFAULT 0,
	n_files        INTEGER NOT NULL DEFAULT 0,
	n_tables       INTEGER NOT NULL DEFAULT 0,
	compress_level INTEGER,
	threads        INTEGER,
	verified_at    REAL,
	verify_status  TEXT CHECK (verify_status IN ('ok', 'failed')),
	manifest_path  TEXT,
	repository     TEXT,
	deleted_at     REAL
) STRICT;
CREATE INDEX snapshots_cluster_started ON snapshots(cluster, started_at);
CREATE INDEX snapshots_cluster_status_started
	ON snapshots(cluster, status, started_at);

CREATE TABLE snapshot_files (
	snapshot_id   TEXT NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
	path          TEXT NOT NULL,
	kind          TEXT NOT NULL,
	schema_name   TEXT,
	table_name    TEXT,
	bytes_raw     INTEGER NOT NULL,
	bytes_stored  INTEGER NOT NULL,
	checksum_algo TEXT NOT NULL,
	checksum      TEXT NOT NULL,
	PRIMARY KEY (snapshot_id, path)
) STRICT, WITHOUT ROWID;

CREATE TABLE snapshot_tables (
	snapshot_id   TEXT NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
	schema_name   TEXT NOT NULL,
	table_name    TEXT NOT NULL,
	engine        TEXT,
	n_rows        INTEGER,
	checksum_algo TEXT,
	checksum      TEXT,
	PRIMARY KEY (snapshot_id, schema_name, table_name)
) STRICT, WITHOUT ROWID;

CREATE TABLE events (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	created_at      REAL NOT NULL,
	cluster         TEXT,
	server          TEXT,
	kind            TEXT NOT NULL,
	severity        TEXT NOT NULL
	                CHECK (severity IN ('info', 'warn', 'error', 'crit')),
	payload         TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(payload)),
	job_id          INTEGER REFERENCES jobs(id) ON DELETE SET NULL,
	delivery        TEXT NOT NULL DEFAULT 'pending'
	                CHECK (delivery IN ('pending', 'sent', 'failed')),
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at REAL NOT NULL,
	last_error      TEXT,
	sent_at         REAL
) STRICT;
CREATE INDEX events_pending ON events(next_attempt_at) WHERE delivery = 'pending';
CREATE INDEX events_created ON events(created_at);

CREATE TABLE lag_samples (
	id           INTEGER PRIMARY KEY,
	cluster      TEXT NOT NULL,
	server       TEXT NOT NULL,
	ts           REAL NOT NULL,
	resolution_s INTEGER NOT NULL DEFAULT 1 CHECK (resolution_s IN (1, 60)),
	lag_s        REAL,
	lag_max_s    REAL,
	state        TEXT NOT NULL
	             CHECK (state IN ('ok', 'warn', 'crit', 'broken', 'unknown')),
	CHECK (lag_s IS NOT NULL OR state IN ('broken', 'unknown'))
) STRICT;
CREATE INDEX lag_samples_server_ts ON lag_samples(server, resolution_s, ts);
CREATE INDEX lag_samples_resolution_ts ON lag_samples(resolution_s, ts);

CREATE TABLE lag_state (
	cluster       TEXT NOT NULL,
	server        TEXT NOT NULL,
	state         TEXT NOT NULL
	              CHECK (state IN ('ok', 'warn', 'crit', 'broken', 'unknown')),
	since         REAL NOT NULL,
	pending_state TEXT
	              CHECK (pending_state IN ('ok', 'warn', 'crit', 'broken', 'unknown')),
	pending_since REAL,
	lag_s         REAL,
	updated_at    REAL NOT NULL,
	PRIMARY KEY (cluster, server)
) STRICT, WITHOUT ROWID;

CREATE TABLE restores (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	job_id        INTEGER REFERENCES jobs(id) ON DELETE SET NULL,
	cluster       TEXT,
	snapshot_id   TEXT NOT NULL,
	target        TEXT NOT NULL,
	as_replica_of TEXT,
	forced        INTEGER NOT NULL DEFAULT 0 CHECK (forced IN (0, 1)),
	started_at    REAL NOT NULL,
	finished_at   REAL,
	bytes         INTEGER,
	n_tables      INTEGER,
	n_rows        INTEGER,
	phases        TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(phases)),
	result        TEXT NOT NULL DEFAULT 'running'
	              CHECK (result IN ('running', 'ok', 'failed', 'aborted')),
	error_code    INTEGER,
	error_message TEXT
) STRICT;
CREATE INDEX restores_target_started ON restores(target, started_at);
CREATE INDEX restores_snapshot ON restores(snapshot_id);

CREATE TABLE rebuilds (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	job_id        INTEGER REFERENCES jobs(id) ON DELETE SET NULL,
	cluster       TEXT NOT NULL,
	server        TEXT NOT NULL,
	reason        TEXT,
	snapshot_id   TEXT,
	restore_id    INTEGER REFERENCES restores(id) ON DELETE SET NULL,
	started_at    REAL NOT NULL,
	finished_at   REAL,
	result        TEXT NOT NULL DEFAULT 'running'
	              CHECK (result IN ('running', 'ok', 'failed', 'aborted')),
	error_code    INTEGER,
	error_message TEXT
) STRICT;
CREATE INDEX rebuilds_server_started ON rebuilds(cluster, server, started_at);

CREATE TABLE drills (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	job_id        INTEGER REFERENCES jobs(id) ON DELETE SET NULL,
	cluster       TEXT NOT NULL,
	snapshot_id   TEXT,
	target        TEXT NOT NULL,
	started_at    REAL NOT NULL,
	finished_at   REAL,
	rto_s         REAL,
	rpo_s         REAL,
	bytes         INTEGER,
	phases        TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(phases)),
	result        TEXT NOT NULL DEFAULT 'running'
	              CHECK (result IN ('running', 'ok', 'failed', 'aborted')),
	reason        TEXT
) STRICT;
CREATE INDEX drills_cluster_started ON drills(cluster, started_at);

CREATE TABLE cutovers (
	id             INTEGER PRIMARY KEY AUTOINCREMENT,
	job_id         INTEGER REFERENCES jobs(id) ON DELETE SET NULL,
	cluster        TEXT NOT NULL,
	from_server    TEXT NOT NULL,
	to_server      TEXT NOT NULL,
	dry_run        INTEGER NOT NULL DEFAULT 0 CHECK (dry_run IN (0, 1)),
	started_at     REAL NOT NULL,
	finished_at    REAL,
	write_pause_ms INTEGER,
	gtid_at_switch TEXT,
	result         TEXT NOT NULL DEFAULT 'running'
	               CHECK (result IN ('running', 'ok', 'failed', 'rolled_back',
	                                 'aborted')),
	error_code     INTEGER,
	error_message  TEXT
) STRICT;
CREATE INDEX cutovers_cluster_started ON cutovers(cluster, started_at);

CREATE TABLE cutover_steps (
	cutover_id  INTEGER NOT NULL REFERENCES cutovers(id) ON DELETE CASCADE,
	seq         INTEGER NOT NULL,
	name        TEXT NOT NULL,
	started_at  REAL NOT NULL,
	duration_ms INTEGER,
	result      TEXT NOT NULL DEFAULT 'running'
	            CHECK (result IN ('running', 'ok', 'failed', 'skipped',
	                              'rolled_back')),
	message     TEXT,
	PRIMARY KEY (cutover_id, seq)
) STRICT, WITHOUT ROWID;

CREATE TABLE schedule_state (
	name          TEXT PRIMARY KEY,
	cluster       TEXT,
	job_kind      TEXT,
	cron          TEXT,
	last_fire_at  REAL,
	last_job_id   INTEGER REFERENCES jobs(id) ON DELETE SET NULL,
	next_fire_at  REAL,
	updated_at    REAL NOT NULL
) STRICT;

CREATE TABLE schedule_runs (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	schedule      TEXT NOT NULL,
	scheduled_for REAL NOT NULL,
	decided_at    REAL NOT NULL,
	outcome       TEXT NOT NULL
	              CHECK (outcome IN ('fired', 'catchup', 'missed', 'skipped')),
	job_id        INTEGER REFERENCES jobs(id) ON DELETE SET NULL,
	note          TEXT,
	UNIQUE (schedule, scheduled_for)
) STRICT;
