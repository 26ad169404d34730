/**
 * The reference: a deliberately minimal implementation of the turn, a yardstick for the bench
 * and never served. node:http and `pg` only: `POST /turn` with `{ userId, conversationId,
 * message, tool }` runs `minimalTurn` (the ceiling's SQL) and answers the reply as JSON. No
 * authentication, no validation, no agent, no lease renewal, no retries: what the server does
 * beyond this is what its overhead buys.
 *
 * Started by the bench as a child process (`node dist/bench/reference.js`) with `DATABASE_URL`;
 * it listens on a free loopback port, prints `Reference: <url>` and stops on SIGTERM. Its pool
 * has as many connections as the server's (10).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { minimalTurn } from './ceiling.js';

const POOL_MAX = 10;

const url = process.env.DATABASE_URL;
if (!url) throw new Error('bench/reference.js needs DATABASE_URL (the bench sets it)');
const pool = new pg.Pool({ connectionString: url, max: POOL_MAX });

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', async () => {
    const answer = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (req.method !== 'POST' || req.url !== '/turn') return answer(404, { error: 'POST /turn only' });
    let db: pg.PoolClient | undefined;
    try {
      const input = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      db = await pool.connect();
      const reply = await minimalTurn(db, {
        userId: String(input.userId),
        conversationId: String(input.conversationId),
        content: String(input.message),
        tool: input.tool === true,
      });
      answer(200, { reply: { id: reply.id, seq: reply.seq, content: 'Hello!' }, context: reply.context });
    } catch (error) {
      answer(500, { error: error instanceof Error ? error.message : String(error) });
    } finally {
      db?.release();
    }
  });
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`Reference: http://127.0.0.1:${(server.address() as AddressInfo).port}/turn\n`);
});
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => void pool.end().then(() => process.exit(0)));
});
