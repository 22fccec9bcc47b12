-- heartbeat.sql — the table backupd's lag monitor writes on the primary (MariaDB 10.11 /
-- MySQL 8). One row per writing server: after a cutover the new primary writes its own
-- row, so a replica's lag is NOW(6) minus the ts of the row of the server it replicates
-- from. The row replicates like any other, so it measures the whole apply path with
-- sub-second resolution and keeps growing while replication is stopped (the behaviour an
-- alert needs), unlike Seconds_Behind_Master, which is NULL exactly while lag builds.
-- Apply on the primary only; it replicates. Safe to apply twice.

CREATE DATABASE IF NOT EXISTS `backupd`;

CREATE TABLE IF NOT EXISTS `backupd`.`heartbeat` (
  -- @@server_id of the primary that wrote the row
  `server_id` INT UNSIGNED NOT NULL,
  -- NOW(6) on that primary at the time of writing
  `ts`        DATETIME(6)  NOT NULL,
  -- optional: the writer's @@gtid_binlog_pos (MariaDB) / @@gtid_executed (MySQL) just
  -- before the write, so a replica can also tell how far behind it is in transactions
  `gtid`      VARCHAR(4096) NULL DEFAULT NULL,
  PRIMARY KEY (`server_id`)
) ENGINE=InnoDB DEFAULT CHARSET=ascii;

-- Written by backupd as, e.g.:
--   REPLACE INTO backupd.heartbeat (server_id, ts, gtid)
--     VALUES (@@server_id, NOW(6), @@gtid_binlog_pos);
