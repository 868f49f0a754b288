import mysql from 'mysql2/promise';
import { type DataFacts, DriverError } from '../../drivers/driver.js';
import { ADMIN } from './admin.js';

/** Tables up to this many rows get a content checksum; larger ones a row count only. */
const CHECKSUM_MAX_ROWS = 1_000_000;

/** A database's tables and their columns, as the server's catalog says now. */
export type TableList = Array<{ name: string; columns: string[] }>;

/**
 * Starts, in `connection`, the read-only transaction the facts are measured in. Sessions settings
 * that change how values print are fixed, so that two servers with other global settings print the
 * same data alike.
 */
export async function beginSnapshot(connection: mysql.Connection): Promise<void> {
  await connection.query("SET SESSION time_zone = '+00:00', sql_mode = ''");
  await connection.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
  await connection.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
}

/** The base tables of `database` (views and sequences hold no rows of their own). */
export async function listTables(connection: mysql.Connection, database: string): Promise<TableList> {
  const [rows] = await connection.query<mysql.RowDataPacket[]>(
    `SELECT c.TABLE_NAME AS t, c.COLUMN_NAME AS c
     FROM information_schema.COLUMNS c JOIN information_schema.TABLES t
       ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
     WHERE c.TABLE_SCHEMA = ? AND t.TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')
     ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION`,
    [database],
  );
  const tables = new Map<string, string[]>();
  for (const row of rows) {
    const name = String(row.t);
    tables.set(name, [...(tables.get(name) ?? []), String(row.c)]);
  }
  return [...tables].map(([name, columns]) => ({ name, columns }));
}

/**
 * Per table, in the connection's current transaction: the row count and, for tables up to
 * CHECKSUM_MAX_ROWS rows, an order-independent checksum: the sum of a 64-bit hash (the first half
 * of MD5) of each row, every column printed with QUOTE() (NULL apart from the text 'NULL') as
 * bytes. The threshold is a row count, not a size, so the source and a restored copy always agree
 * on whether a table is checksummed.
 */
export async function tableFacts(
  connection: mysql.Connection,
  database: string,
  tables: TableList,
): Promise<DataFacts> {
  const facts: DataFacts['tables'] = [];
  for (const table of tables) {
    const from = `${mysql.escapeId(database)}.${mysql.escapeId(table.name)}`;
    const [counted] = await connection.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${from}`);
    const rows = Number(counted[0]!.n);
    let checksum = '';
    if (rows <= CHECKSUM_MAX_ROWS) {
      const row = table.columns.map((c) => `CAST(QUOTE(${mysql.escapeId(c)}) AS BINARY)`).join(", ',', ");
      const [summed] = await connection.query<mysql.RowDataPacket[]>(
        `SELECT CAST(COALESCE(SUM(CAST(CONV(LEFT(MD5(CONCAT(${row})), 16), 16, 10) AS UNSIGNED)), 0) AS CHAR) AS c FROM ${from}`,
      );
      checksum = String(summed[0]!.c);
    }
    facts.push({ name: table.name, rows, checksum });
  }
  return { tables: facts };
}

/**
 * Resolves once mariadb-dump's own consistent-snapshot transaction has begun (it is the admin
 * session with an InnoDB transaction that is neither of `ours` and is past START TRANSACTION), or
 * once the dump has ended well (a small one can: then all of it ran while commits were blocked).
 * Rejects when the dump failed first (`exit`: its exit code) or got nowhere within 60 s.
 */
export async function dumpSnapshotTaken(
  blocker: mysql.Connection,
  ours: number[],
  exit: Promise<number | null>,
) {
  let code: number | null | undefined;
  void exit.then((c) => (code = c));
  const deadline = Date.now() + 60_000;
  for (;;) {
    const [rows] = await blocker.query<mysql.RowDataPacket[]>(
      `SELECT COUNT(*) AS n FROM information_schema.INNODB_TRX t
       JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
       WHERE p.USER = ? AND p.ID NOT IN (?) AND (p.INFO IS NULL OR p.INFO NOT LIKE 'START TRANSACTION%')`,
      [ADMIN, ours],
    );
    if (Number(rows[0]!.n) > 0) return;
    if (code === 0) return;
    if (code !== undefined) throw new DriverError('BackupFailed', `mariadb-dump exited with ${code}`);
    if (Date.now() > deadline)
      throw new DriverError('BackupFailed', 'mariadb-dump did not start its transaction in 60 s');
    // InnoDB refreshes what INNODB_TRX shows only when it was not read for 100 ms: polling faster
    // would keep showing the state from before the dump began.
    await new Promise((r) => setTimeout(r, 120));
  }
}
