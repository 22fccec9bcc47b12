-- The awkward dataset every snapshot/restore test round-trips: every column
-- type family, odd identifiers, NULL vs '' vs 'NULL', binary with NUL and
-- high bytes, escapes, 4-byte UTF-8, generated columns, a table without a
-- primary key, a MyISAM table, a view, a trigger, routines and an event.
-- Loaded on the primary (it replicates).
SET NAMES utf8mb4;
CREATE DATABASE `odd``db "q" ü` CHARACTER SET utf8mb4;
USE `odd``db "q" ü`;

CREATE TABLE `types` (
  id INT NOT NULL PRIMARY KEY,
  ti TINYINT, si SMALLINT UNSIGNED, mi MEDIUMINT, bi BIGINT UNSIGNED,
  dc DECIMAL(30,10), fl FLOAT, db DOUBLE,
  b BIT(13), b1 BIT(1), b64 BIT(64),
  c CHAR(10), vc VARCHAR(255), tx TEXT, lt LONGTEXT,
  bn BINARY(8), vb VARBINARY(300), bl BLOB, lb LONGBLOB,
  d DATE, t TIME(3), dt DATETIME(6), ts TIMESTAMP(6) NULL, y YEAR,
  e ENUM('a','b','c d'), st SET('x','y','z'),
  j JSON, ip INET6, u UUID,
  g GEOMETRY, p POINT, ls LINESTRING,
  gv INT AS (id * 2) VIRTUAL,
  gs VARCHAR(300) AS (CONCAT('v:', vc)) STORED
) ENGINE=InnoDB;

INSERT INTO `types` (id, ti, si, mi, bi, dc, fl, db, b, b1, b64, c, vc, tx, lt, bn, vb, bl, lb,
  d, t, dt, ts, y, e, st, j, ip, u, g, p, ls) VALUES
 (1, -128, 65535, -8388608, 18446744073709551615, -12345678901234567890.0123456789, 1.5, 2.718281828459045,
  b'1010101010101', b'1', b'1111111111111111111111111111111111111111111111111111111111111111',
  'abc', 'tab\there', 'new\nline', 'back\\slash', x'00FF00FF00FF00FF', x'000102', x'00', x'FF00FE',
  '2024-02-29', '-838:59:59.000', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999', 2155,
  'c d', 'x,z', '{"k": [1, "two", null, {"n": "ü😀"}]}', '2001:db8::ff00:42:8329', 'f81d4fae-7dec-11d0-a765-00a0c91e6bf6',
  ST_GeomFromText('POLYGON((0 0,10 0,10 10,0 10,0 0))', 4326), POINT(1.5, -2.25), ST_GeomFromText('LINESTRING(0 0,1 1,2 1)')),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (3, 0, 0, 0, 0, 0, 0, 0, b'0', b'0', b'0', '', '', '', '', x'0000000000000000', '', '', '',
  '1000-01-01', '00:00:00', '1000-01-01 00:00:00', '1970-01-01 00:00:01', 1901,
  'a', '', '[]', '::', '00000000-0000-0000-0000-000000000000', POINT(0,0), POINT(0,0), ST_GeomFromText('LINESTRING(0 0,0 1)')),
 (4, 1, 2, 3, 4, 5.5, -0.0, 1e308, b'1', b'1', b'1', 'NULL', 'NULL', '\\N', 'N', x'5C4E000000000000', x'5C4E', 'NULL', x'5C',
  '2000-01-01', '12:34:56.789', '2026-03-29 02:30:00', '2026-03-29 01:30:00', 2000,
  'b', 'y', '"NULL"', '::ffff:1.2.3.4', 'ffffffff-ffff-ffff-ffff-ffffffffffff', POINT(1,1), POINT(-180, 90), ST_GeomFromText('LINESTRING(1 1,2 2)')),
 (5, 5, 5, 5, 5, 0.0000000001, 3.4e38, -1.7976931348623157e308, b'0000000000001', b'0', b'1000000000000000000000000000000000000000000000000000000000000000',
  '\t\n\r', CONCAT('cr\r', CHAR(26), 'ctrlz', CHAR(0), 'nul'), 'emoji 😀 𝄞 中文 עברית', REPEAT('x', 70000),
  x'0D0A090000000000', x'0D0A095C30', x'5C305C6E5C745C', REPEAT(x'00FF5C0A09', 1000),
  '0001-01-01', '838:59:59.999', '2026-11-25 13:00:00.000001', NULL, NULL,
  NULL, 'x,y,z', '{"a\\"b": "c\\nd"}', NULL, NULL, NULL, NULL, NULL);

-- A 4 MB row (LOAD DATA reads rows whole; snapshots must stream it).
CREATE TABLE `big row` (id INT PRIMARY KEY, payload LONGBLOB) ENGINE=InnoDB;
INSERT INTO `big row` VALUES (1, REPEAT(x'00010203045C090A0D', 466034)), (2, 'small');

-- Identifiers: backtick, quotes, spaces, unicode, reserved words, emoji-free
-- BMP (the servers keep identifiers in utf8mb3).
CREATE TABLE `we``ird 'name' "x"` (`sel``ect` INT PRIMARY KEY, `from` VARCHAR(20), `ünï cødé` TEXT) ENGINE=InnoDB;
INSERT INTO `we``ird 'name' "x"` VALUES (1, 'a', 'ü'), (2, NULL, ''), (3, '', NULL);
CREATE TABLE `order` (`key` INT, `group` INT) ENGINE=InnoDB;  -- no primary key
INSERT INTO `order` VALUES (1, 1), (1, 1), (NULL, 2), (3, NULL);
CREATE TABLE `Ω table` (id BIGINT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(10)) ENGINE=InnoDB;
INSERT INTO `Ω table` (v) VALUES ('a'), ('b'), ('c');
INSERT INTO `Ω table` (id, v) VALUES (0, 'zero?');

-- Non-transactional tables: dumped while the source is frozen.
CREATE TABLE `legacy_myisam` (id INT PRIMARY KEY, v VARCHAR(50)) ENGINE=MyISAM;
INSERT INTO `legacy_myisam` VALUES (1, 'old'), (2, 'older');
CREATE TABLE `aria_log` (id INT, msg TEXT) ENGINE=Aria;
INSERT INTO `aria_log` VALUES (1, 'aria row');

CREATE TABLE `parent` (id INT PRIMARY KEY) ENGINE=InnoDB;
CREATE TABLE `child` (id INT PRIMARY KEY, parent_id INT, FOREIGN KEY (parent_id) REFERENCES `parent`(id)) ENGINE=InnoDB;
INSERT INTO `parent` VALUES (1), (2);
INSERT INTO `child` VALUES (10, 1), (11, 2), (12, NULL);

CREATE TABLE `empty` (id INT PRIMARY KEY) ENGINE=InnoDB;

CREATE VIEW `v odd` AS SELECT id, vc FROM `types` WHERE id < 3;
CREATE VIEW `v of v` AS SELECT id FROM `v odd`;

DELIMITER //
CREATE TRIGGER `trg ins` BEFORE INSERT ON `parent` FOR EACH ROW BEGIN SET NEW.id = NEW.id; END//
CREATE PROCEDURE `proc "p"`(IN x INT) BEGIN SELECT x * 2 AS doubled; END//
CREATE FUNCTION `fn``f`(x INT) RETURNS INT DETERMINISTIC RETURN x + 1//
DELIMITER ;
CREATE EVENT `ev nightly` ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DISABLE DO DELETE FROM `empty` WHERE id < 0;

-- A second, ordinary database with a table big enough to be split into
-- chunks by primary key (the tests pass a small --chunk-rows).
CREATE DATABASE shop;
CREATE TABLE shop.orders (id INT AUTO_INCREMENT PRIMARY KEY, customer INT NOT NULL, total DECIMAL(10,2), note VARCHAR(100), KEY (customer)) ENGINE=InnoDB;
INSERT INTO shop.orders (customer, total, note)
  SELECT seq % 977, (seq * 7919 % 100000) / 100, CONCAT('order ', seq) FROM seq_1_to_20000;
ANALYZE TABLE shop.orders;
