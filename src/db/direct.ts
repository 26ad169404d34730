/**
 * One statement sent straight to the ORM's `pg` pool, for the turn's hot path (its one-statement
 * start and end): the values go as `$n` parameters instead of being quoted into the text by the
 * ORM, with no query builder or kysely in between. Measured under load, that share of a turn's
 * server CPU is in docs/benchmarks.md. Everything else stays the same: the statement is reported
 * to the ORM's logger like any other (statement counts, the user-scope check, trace logs), its
 * errors become the ORM's exceptions (a unique violation is still `UniqueConstraintViolationException`),
 * and inside a transaction it goes through the transaction's connection instead.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type pg from 'pg';
import { preparesStatements } from './settings.js';

/** A runner of statements with `?` placeholders (as `em.execute` takes them), resolving to their rows. */
export type Reader = <Row>(sql: string, params: readonly unknown[]) => Promise<Row[]>;

/** The statements of `em` as a `Reader`: through the ORM, on its transaction's connection when it is in one. */
export function ormReader(em: EntityManager): Reader {
  return <Row>(sql: string, params: readonly unknown[]) => em.execute<Row[]>(sql, [...params]);
}

/**
 * Runs `work` in a read-only REPEATABLE READ transaction on a connection of its own from the ORM's
 * pool (every statement of it sees one snapshot), its statements sent straight to `pg` like
 * `directQuery`'s, each reported to the ORM's logger: for long reads of many rows (export), where
 * the process must stay small (see `rowsOf`). The connection is given back when `work` ends, ended
 * instead when its transaction could not be closed.
 */
export async function readSnapshot<T>(em: EntityManager, work: (read: Reader) => Promise<T>): Promise<T> {
  const pool = (await em.getConnection().getNativeClient()) as pg.Pool;
  const client = await pool.connect();
  const read = async <Row>(sql: string, params: readonly unknown[]): Promise<Row[]> => {
    const text = numbered(sql);
    const started = performance.now();
    try {
      return await rowsOf<Row>(client, text, params);
    } catch (error) {
      throw error instanceof Error ? em.getDriver().convertException(error) : error;
    } finally {
      const logger = em.config.getLogger();
      if (logger.isEnabled('query')) logger.logQuery({ query: text, took: Math.round(performance.now() - started) });
    }
  };
  let broken: Error | undefined;
  try {
    await read('begin isolation level repeatable read read only', []);
    const result = await work(read);
    await read('commit', []);
    return result;
  } catch (error) {
    await read('rollback', []).catch((failure: unknown) => {
      broken = failure instanceof Error ? failure : new Error(String(failure));
    });
    throw error;
  } finally {
    try {
      client.release(broken);
    } catch {
      // Released already (pool-guard.ts gives back a connection whose COMMIT or ROLLBACK failed).
    }
  }
}

// Private: the rows of one statement on `client`, asked for with a callback. Measured on an export of
// 200,000 messages (test/export-memory.test.ts): through the ORM's `execute`, or through `pg`'s
// promise form of `client.query`, each result stayed reachable long enough to be promoted out of
// the young generation, and the process grew by some 160 MB of garbage before a full collection
// (peak RSS 275 MB, with a live heap of 21 MB); with the callback form the export peaks at 150 MB,
// 110 MB of which is the program loaded.
function rowsOf<Row>(client: pg.PoolClient, text: string, values: readonly unknown[]): Promise<Row[]> {
  return new Promise((resolve, reject) => {
    client.query(text, values as unknown[], (error: Error | null, result: pg.QueryResult) => {
      if (error) reject(error);
      else resolve(result.rows as Row[]);
    });
  });
}

/** Runs `sql` (with `?` placeholders, as `em.execute` takes them) and returns its rows. */
export async function directQuery<Row>(em: EntityManager, sql: string, params: readonly unknown[]): Promise<Row[]> {
  if (em.isInTransaction()) return em.execute<Row[]>(sql, [...params]);
  const text = numbered(sql);
  const started = performance.now();
  try {
    const pool = (await em.getConnection().getNativeClient()) as pg.Pool;
    // Unnamed through a transaction pooler that does not track named statements (DATABASE_PREPARE=off).
    const name = preparesStatements(em) ? statementName(text) : undefined;
    const result = await pool.query({ name, text, values: params as unknown[] });
    return result.rows as Row[];
  } catch (error) {
    throw error instanceof Error ? em.getDriver().convertException(error) : error;
  } finally {
    const logger = em.config.getLogger();
    if (logger.isEnabled('query')) logger.logQuery({ query: text, took: Math.round(performance.now() - started) });
  }
}

// Private: each distinct statement text gets a name, so that every connection parses and plans it
// once (PostgreSQL keeps a named statement for the connection's life). The texts are the few of
// the hot path; past `NAMED_MAX` they go unnamed.
const NAMED_MAX = 64;
const names = new Map<string, string>();
function statementName(text: string): string | undefined {
  let name = names.get(text);
  if (name === undefined && names.size < NAMED_MAX) {
    name = `stateless_chat_${names.size + 1}`;
    names.set(text, name);
  }
  return name;
}

// Private: `?` placeholders numbered `$1`, `$2`, ... (the statements of this module hold no `?`
// in a string literal, a quoted name or a comment, and use no jsonb `?` operator).
function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}
