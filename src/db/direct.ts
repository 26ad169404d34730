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

/** Runs `sql` (with `?` placeholders, as `em.execute` takes them) and returns its rows. */
export async function directQuery<Row>(em: EntityManager, sql: string, params: readonly unknown[]): Promise<Row[]> {
  if (em.isInTransaction()) return em.execute<Row[]>(sql, [...params]);
  const text = numbered(sql);
  const started = performance.now();
  try {
    const pool = (await em.getConnection().getNativeClient()) as pg.Pool;
    const result = await pool.query({ name: statementName(text), text, values: params as unknown[] });
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
