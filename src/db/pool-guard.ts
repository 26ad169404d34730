/**
 * Keeps the connection pool whole when the database goes away in the middle of a transaction.
 *
 * Under MikroORM 7, kysely hands a pooled connection back only after its BEGIN, COMMIT or ROLLBACK
 * succeeds. When one of those fails (the connection was cut, the server is restarting) the
 * connection is never given back: after `pool.max` such failures every request of the instance
 * waits forever, though PostgreSQL is long back. So when a transaction-control statement fails,
 * the connection is released with the error, which makes the pool end it and forget it; a new one
 * is opened on demand. A failed COMMIT or ROLLBACK leaves nothing worth keeping on a connection.
 */
import type pg from 'pg';

const TRANSACTION_CONTROL = /^\s*(begin|start transaction|commit|rollback)\b/i;

/** Guards every connection `pool` opens; pass it as MikroORM's `driverOptions.onPoolCreated`. */
export function guardPool(pool: pg.Pool): void {
  pool.on('connect', (client) => guardClient(client as pg.PoolClient));
}

function guardClient(client: pg.PoolClient): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  (client as { query: unknown }).query = (...args: unknown[]) => {
    const result = query(...args);
    const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text?: string } | undefined)?.text;
    if (!text || !TRANSACTION_CONTROL.test(text) || !(result instanceof Promise)) return result;
    return result.catch((error: unknown) => {
      try {
        client.release(error instanceof Error ? error : new Error(String(error)));
      } catch {
        // Already given back: nothing is leaking.
      }
      throw error;
    });
  };
}
