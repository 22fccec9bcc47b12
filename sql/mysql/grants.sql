-- grants.sql — the least privileges backupd's own account needs (MariaDB 10.11 syntax).
--
-- Apply AFTER creating the account, on the primary (the grants replicate) and on every
-- standalone restore or drill target:
--   CREATE USER 'backupd'@'127.0.0.1' IDENTIFIED BY '...';
--   SOURCE sql/mysql/grants.sql
-- The account below is the test environment's. For your own host pattern:
--   sed "s/'backupd'@'127.0.0.1'/'backupd'@'10.0.0.%'/" sql/mysql/grants.sql | mariadb
-- Why each privilege is here is written next to it and in sql/mysql/README.md.
-- Not granted on purpose: SUPER, FILE (restores use LOAD DATA LOCAL INFILE, which needs
-- only INSERT), SHUTDOWN, GRANT OPTION, CREATE USER, REPLICATION SLAVE (backupd never
-- reads binlogs), REPLICATION MASTER ADMIN.

-- Snapshots: read every table, view, trigger, routine and event definition.
--   SELECT      rows; routine bodies (SHOW CREATE PROCEDURE/FUNCTION returns NULL
--               for the body without it); mysql.gtid_slave_pos
--   SHOW VIEW   SHOW CREATE VIEW
--   TRIGGER     SHOW CREATE TRIGGER / information_schema.TRIGGERS (and CREATE TRIGGER on restore)
--   EVENT       SHOW CREATE EVENT (and CREATE EVENT on restore)
--   LOCK TABLES consistency for non-transactional (MyISAM/Aria) tables
GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES
  ON *.* TO 'backupd'@'127.0.0.1';

-- Snapshot consistency and position.
--   RELOAD          FLUSH TABLES WITH READ LOCK / BACKUP STAGE on a primary; RESET MASTER
--                   on an empty restore target so SET GLOBAL gtid_slave_pos does not
--                   conflict with GTIDs in its own binlog (gtid_strict_mode)
--   PROCESS         SHOW ENGINE INNODB STATUS, information_schema.INNODB_TRX and every
--                   session in PROCESSLIST: the "no long transactions" cutover guardrail
--   BINLOG MONITOR  SHOW MASTER STATUS / SHOW BINARY LOGS: binlog file and position
--   SLAVE MONITOR   SHOW SLAVE STATUS: lag, thread state, Gtid_IO_Pos (alias REPLICA MONITOR)
GRANT RELOAD, PROCESS, BINLOG MONITOR, SLAVE MONITOR
  ON *.* TO 'backupd'@'127.0.0.1';

-- Replication control: consistent snapshots from a replica, re-attach after restore,
-- rebuild and cutover.
--   REPLICATION SLAVE ADMIN  STOP/START SLAVE [SQL_THREAD], CHANGE MASTER TO ...
--                            MASTER_USE_GTID, RESET SLAVE [ALL], SET GLOBAL gtid_slave_pos
--   READ_ONLY ADMIN          SET GLOBAL read_only (cutover: blue read-only, green writable)
--                            and writing into a read_only replica while rebuilding it
--   BINLOG ADMIN             SET SESSION sql_log_bin=0 so a rebuild's load is not written
--                            to the target's binlog (and no errant GTIDs appear); also
--                            SET GLOBAL log_bin_trust_function_creators=1, without which
--                            only SUPER may create triggers and stored functions on a
--                            server with binlog on (even with sql_log_bin=0)
--   CONNECTION ADMIN         KILL other accounts' sessions on blue at cutover; still able
--                            to connect when max_connections is exhausted
GRANT REPLICATION SLAVE ADMIN, READ_ONLY ADMIN, BINLOG ADMIN, CONNECTION ADMIN
  ON *.* TO 'backupd'@'127.0.0.1';

-- Restores: recreate schemas and load rows (LOAD DATA LOCAL INFILE needs only INSERT).
--   CREATE, DROP, ALTER, INDEX                   tables and keys
--   REFERENCES                                   foreign keys: MariaDB 10.11 does not check
--                                                it, MySQL 8 does; kept so both get one list
--   INSERT, UPDATE, DELETE                       rows (and the heartbeat row)
--   CREATE VIEW, CREATE ROUTINE, ALTER ROUTINE   views, procedures and functions
--   CREATE TEMPORARY TABLES                      staging during restore and verify
--   SET USER                                     objects whose DEFINER is another account
--                                                (views, routines, triggers, events)
GRANT CREATE, DROP, ALTER, INDEX, REFERENCES,
      INSERT, UPDATE, DELETE,
      CREATE VIEW, CREATE ROUTINE, ALTER ROUTINE,
      CREATE TEMPORARY TABLES, SET USER
  ON *.* TO 'backupd'@'127.0.0.1';
