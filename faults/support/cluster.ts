/**
 * The world of one fault run: a real PostgreSQL (embedded, a fresh cluster in a temporary
 * directory, kept on one port so it can be restarted under the instances), the fake model, and
 * three server processes (`node dist/src/main.js`, built by the global setup) on that one database.
 * An instance can be killed and replaced (on a new port), or restarted gracefully on its own port.
 *
 * Every child leads its own process group and is SIGKILLed with it at `close()`, and at the
 * worker's exit should a run die half way; the temporary directory goes with `close()`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { RATE_LIMITS_OFF } from '../../src/config.js';
import { startPostgresServer } from '../../src/db/embedded.js';
import { defined } from '../../test/support/defined.js';
import { type FakeModel, startFakeModel } from './model.js';

export const JWT_SECRET = 'fault-runs-secret-that-is-long-enough-for-hs256';
const PASSWORD = 'faults';
const DATABASE = 'faults';
const MAIN = path.resolve('dist/src/main.js');
const START_DEADLINE_MS = 60_000;
const KEPT_LINES = 200;

export type Instance = {
  /** 0, 1, 2: the position in `cluster.instances`. */
  index: number;
  pid: number;
  /** The GraphQL endpoint. */
  url: string;
  origin: string;
  /** The last lines the process printed (stdout and stderr), for diagnosis. */
  output(): string[];
  /** Its warn and error log lines, each as `level msg: error message` (for notes). */
  problems(): string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL to the process group; resolves once the process is gone. */
  kill(): Promise<void>;
  /** SIGTERM to the server process (a graceful stop: it drains, then exits); resolves with its exit. */
  terminate(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
};

export type Cluster = {
  model: FakeModel;
  instances: Instance[];
  /** `postgresql://...` of the application database. */
  databaseUrl: string;
  /** Runs SQL on the application database from the test (a pool apart from the instances'). */
  sql<Row = Record<string, unknown>>(text: string, values?: unknown[]): Promise<Row[]>;
  /** Stops PostgreSQL (fast shutdown), waits `downMs`, starts it again on the same port. */
  restartPostgres(downMs: number): Promise<{ stoppedMs: number; downMs: number; startedMs: number }>;
  /** Starts a new server process in place of `index` (after a kill). */
  replace(index: number): Promise<Instance>;
  /**
   * A rolling restart of `index`: SIGTERM, wait for the exit, start a new process on the same port.
   * Resolves with the old process's exit and when each step ended (ms since the call).
   */
  restart(index: number): Promise<{ exit: { code: number | null; signal: NodeJS.Signals | null }; exitedMs: number; startedMs: number }>;
  close(): Promise<void>;
};

/** Starts PostgreSQL, the fake model and three instances with `settings` added to their environment. */
export async function startCluster(settings: Record<string, string> = {}): Promise<Cluster> {
  const dir = await mkdtemp(path.join(tmpdir(), 'stateless-chat-faults-'));
  await chmod(dir, 0o755); // as root, PostgreSQL runs as the `postgres` user and must reach the cluster
  const children = new Set<ChildProcess>();
  const killChildren = () => {
    for (const child of children) killGroup(child);
  };
  process.once('exit', killChildren);

  let postgres: Awaited<ReturnType<typeof startPostgresServer>> | undefined;
  let model: FakeModel | undefined;
  let pool: pg.Pool | undefined;
  const close = async () => {
    killChildren();
    await Promise.all([...children].map((child) => exitOf(child)));
    process.removeListener('exit', killChildren);
    await pool?.end().catch(() => {});
    await model?.close();
    await postgres?.stop().catch(() => {});
    await rm(dir, { recursive: true, force: true });
  };

  try {
    // persistent: the package's own stop() deletes a non-persistent cluster, and the restart
    // scenario stops and starts it through the package; the directory goes with close().
    postgres = await startPostgresServer({
      clusterDir: path.join(dir, 'pg'),
      password: PASSWORD,
      persistent: true,
      flags: ['-c', 'max_connections=200', '-c', 'fsync=off', '-c', 'synchronous_commit=off'],
    });
    const admin = new pg.Client({ connectionString: `postgresql://postgres:${PASSWORD}@127.0.0.1:${postgres.port}/postgres` });
    await admin.connect();
    await admin.query(`create database ${DATABASE}`);
    await admin.end();
    const databaseUrl = `postgresql://postgres:${PASSWORD}@127.0.0.1:${postgres.port}/${DATABASE}`;
    pool = new pg.Pool({ connectionString: databaseUrl, max: 3 });
    pool.on('error', () => {}); // idle clients die with a PostgreSQL restart; the pool drops them

    model = await startFakeModel();
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      ...(process.env.TMPDIR ? { TMPDIR: process.env.TMPDIR } : {}),
      NODE_ENV: 'development',
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'warn',
      DATA_DIR: path.join(dir, 'data'),
      DATABASE_URL: databaseUrl,
      JWT_SECRET,
      OPENAI_API_KEY: 'fault-key',
      OPENAI_BASE_URL: model.baseUrl,
      OPENAI_MODEL: 'fault-model',
      // The model's requests are counted as turns: no titles asked beside them.
      TITLE_MODEL: 'off',
      // The runs send hundreds of turns per user in seconds: per-user limits would refuse them.
      ...RATE_LIMITS_OFF,
      ...settings,
    };
    const launch = (index: number, extra: NodeJS.ProcessEnv = {}) => launchInstance(index, { ...env, ...extra }, children);

    // The first applies the migrations alone; the other two find them applied.
    const instances = [await launch(0)];
    instances.push(...(await Promise.all([launch(1), launch(2)])));

    const server = postgres.server;
    return {
      model,
      instances,
      databaseUrl,
      async sql<Row>(text: string, values?: unknown[]) {
        return (await defined(pool, 'the test pool (made at start)').query(text, values)).rows as Row[];
      },
      async restartPostgres(downMs) {
        const began = Date.now();
        await server.stop();
        const stopped = Date.now();
        await sleep(downMs);
        const starting = Date.now();
        await server.start();
        return { stoppedMs: stopped - began, downMs: Date.now() - stopped, startedMs: Date.now() - starting };
      },
      async replace(index) {
        instances[index] = await launch(index);
        return instances[index];
      },
      async restart(index) {
        const began = Date.now();
        const old = defined(instances[index], `instance ${index}`);
        const exit = await old.terminate();
        const exitedMs = Date.now() - began;
        instances[index] = await launch(index, { PORT: new URL(old.origin).port });
        return { exit, exitedMs, startedMs: Date.now() - began };
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

// Private: starts one server process and waits for its URL. With LOG_LEVEL=warn the
// "stateless-chat listening" log line (info) is not printed; outside production the server
// prints `GraphQL: <url>` above its dev token whatever the level, so either line is taken.
async function launchInstance(index: number, env: NodeJS.ProcessEnv, children: Set<ChildProcess>): Promise<Instance> {
  const child = spawn(process.execPath, [MAIN], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  children.add(child);
  const lines: string[] = [];
  const keep = (line: string) => {
    lines.push(line);
    if (lines.length > KEPT_LINES) lines.shift();
  };
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }),
  );
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => fail(`no URL within ${START_DEADLINE_MS} ms`), START_DEADLINE_MS);
    const fail = (why: string) => {
      clearTimeout(timer);
      killGroup(child);
      reject(new Error(`instance ${index} did not start: ${why}\n${lines.join('\n')}`));
    };
    void exited.then((exit) => fail(`exited with ${JSON.stringify(exit)}`));
    const found = (line: string) => {
      const banner = /^GraphQL: (http:\/\/\S+)$/.exec(line);
      if (banner) return banner[1];
      if (!line.startsWith('{')) return undefined;
      try {
        const log = JSON.parse(line) as { msg?: string; url?: string };
        return log.msg === 'stateless-chat listening' ? log.url : undefined;
      } catch {
        return undefined;
      }
    };
    const onLines = (stream: NodeJS.ReadableStream, prefix: string) => {
      let partial = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        const parts = (partial + chunk).split('\n');
        partial = parts.pop() ?? ''; // split always gives at least one part
        for (const line of parts) {
          keep(prefix + line);
          const url = found(line);
          if (url) {
            clearTimeout(timer);
            resolve(url);
          }
        }
      });
    };
    onLines(defined(child.stdout, 'the piped stdout of the server'), '');
    onLines(defined(child.stderr, 'the piped stderr of the server'), 'stderr: ');
  });
  return {
    index,
    pid: defined(child.pid, 'the pid of the spawned server'),
    url,
    origin: new URL(url).origin,
    output: () => [...lines],
    problems: () => lines.flatMap(problem),
    exited,
    async kill() {
      killGroup(child);
      await exited;
    },
    async terminate() {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

// Private: a pino line at warn or above, shortened to `level msg: error message`.
function problem(line: string): string[] {
  if (!line.startsWith('{')) return line.startsWith('stderr: ') ? [line] : [];
  try {
    const log = JSON.parse(line) as {
      level?: number;
      msg?: string;
      path?: unknown[];
      err?: { type?: string; message?: string; code?: string; stack?: string };
    };
    if ((log.level ?? 0) < 40) return [];
    // The first frame in the server's own code says which step met the error.
    const frame = /at (?:async )?(?:([\w.<>]+) \()?[^\n]*?dist\/src\/([\w/.-]+\.js:\d+)/.exec(log.err?.stack ?? '');
    const where = `${log.path ? ` at ${log.path.join('.')}` : ''}${frame ? ` (${frame[1] ? `${frame[1]} ` : ''}${frame[2]})` : ''}`;
    const firstLine = (String(log.err?.message ?? '').split('\n')[0] ?? '').slice(0, 160);
    const err = log.err ? `: ${log.err.type ?? 'Error'}${log.err.code ? ` ${log.err.code}` : ''} ${firstLine}` : '';
    return [`${(log.level ?? 0) >= 50 ? 'error' : 'warn'} ${log.msg}${where}${err}`];
  } catch {
    return [];
  }
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // ESRCH: already gone
  }
}

function exitOf(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('close', () => resolve()));
}
