/**
 * The server and the CLI as real child processes (`node dist/src/...`, built by the global setup),
 * as an operator runs them. Stdout is read line by line; every wait has a deadline, and when it
 * fails the message shows what the process printed. Each child leads its own process group, so
 * that `killAll()` also takes down an embedded PostgreSQL a killed server leaves behind.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { defined } from './defined.js';

export type Exit = { code: number | null; signal: NodeJS.Signals | null };

/** A JSON log line of the server (pino). */
export type LogLine = { level: number; msg: string; [field: string]: unknown };

export type ServerProcess = {
  pid: number;
  /** The GraphQL endpoint, from the "stateless-chat listening" log line (the real port). */
  url: string;
  /** `http://host:port`, for the other routes. */
  origin: string;
  /** The stdout lines printed so far. */
  lines(): string[];
  /** The JSON log lines printed so far. */
  logs(): LogLine[];
  /** The token printed after `Dev token for user "demo"`; fails when none comes within `ms`. */
  devToken(ms?: number): Promise<string>;
  /** Resolves when the process has exited and its output is closed. */
  exited: Promise<Exit>;
  /**
   * Sends `signal` to the server process alone and waits at most `ms` for it to exit; past the
   * deadline it kills the process group and fails with what the server printed.
   */
  stop(signal: NodeJS.Signals, ms?: number): Promise<Exit>;
  /** Cleanup: SIGKILL to the server's process group (its embedded PostgreSQL included). */
  kill(): Promise<void>;
};

export type Finished = Exit & { stdout: string; stderr: string };

/** The server and the CLI of the build of the project in `projectDir` (default: this one). */
const main = (projectDir = process.cwd()) => path.resolve(projectDir, 'dist/src/main.js');
const cli = (projectDir = process.cwd()) => path.resolve(projectDir, 'dist/src/cli.js');
const LISTENING = 'stateless-chat listening';
const DEV_TOKEN_HEADING = /^Dev token for user "demo"/;

/**
 * The environment of a child, built from nothing: `PATH` (and `TMPDIR` when set) plus the
 * server's defaults for tests, `PORT=0`, `HOST=127.0.0.1`, `LOG_LEVEL=info`, then `settings`.
 */
export function serverEnv(settings: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    ...(process.env.TMPDIR ? { TMPDIR: process.env.TMPDIR } : {}),
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    ...settings,
  };
}

/**
 * Starts `node dist/src/main.js` with `env` and resolves once it logs that it listens (default
 * deadline 30 s); `projectDir`: run the build of a copy of the project instead.
 */
export async function startServer(env: NodeJS.ProcessEnv, ms = 30_000, projectDir?: string): Promise<ServerProcess> {
  const child = launch(main(projectDir), [], env, projectDir);
  const listening = await child
    .waitForLine((line) => parseLog(line)?.msg === LISTENING, `the "${LISTENING}" log line`, ms)
    .catch(async (error: unknown) => {
      await child.kill();
      throw error;
    });
  const url = String(defined(parseLog(listening), 'the listening log line as JSON').url);
  return {
    pid: defined(child.process.pid, 'the pid of the server process'),
    url,
    origin: new URL(url).origin,
    lines: () => [...child.stdoutLines()],
    logs: () =>
      child
        .stdoutLines()
        .map(parseLog)
        .filter((line): line is LogLine => line !== undefined),
    async devToken(wait = 5_000) {
      await child.waitForLine((line) => DEV_TOKEN_HEADING.test(line), 'the dev token heading', wait);
      const lines = child.stdoutLines();
      const heading = lines.findIndex((line) => DEV_TOKEN_HEADING.test(line));
      const token = await child.waitForLine((_line, index) => index === heading + 1, 'the dev token after its heading', wait);
      return token.trim();
    },
    exited: child.exited,
    stop: (signal, wait = 10_000) => child.stop(signal, wait),
    kill: () => child.kill(),
  };
}

/** Runs `node dist/src/main.js` expecting it to exit by itself (default deadline 30 s). */
export function runServer(env: NodeJS.ProcessEnv, ms = 30_000): Promise<Finished> {
  return launch(main(), [], env).finish(ms);
}

/** Runs `node dist/src/cli.js ...args` to completion (default deadline 30 s), of a copy of the project in `projectDir` when given. */
export function runCli(args: string[], env: NodeJS.ProcessEnv, ms = 30_000, projectDir?: string): Promise<Finished> {
  return launch(cli(projectDir), args, env, projectDir).finish(ms);
}

/** A CLI run under way: its stdout lines, a wait for one, its exit, and SIGKILL to its group. */
export type CliProcess = {
  lines(): string[];
  waitForLine(predicate: (line: string) => boolean, what: string, ms?: number): Promise<string>;
  finish(ms?: number): Promise<Finished>;
  kill(): Promise<void>;
};

/** Starts `node dist/src/cli.js ...args` and returns at once (to kill it midway). */
export function startCli(args: string[], env: NodeJS.ProcessEnv): CliProcess {
  const child = launch(cli(), args, env);
  return {
    lines: () => [...child.stdoutLines()],
    waitForLine: (predicate, what, ms = 30_000) => child.waitForLine(predicate, what, ms),
    finish: (ms = 30_000) => child.finish(ms),
    kill: () => child.kill(),
  };
}

/** Kills every child still running, with its process group (an embedded PostgreSQL included). */
export async function killAll(): Promise<void> {
  await Promise.all([...launchedAll].map((child) => child.kill()));
}

// Private: every child launched, for killAll() and for the test worker's own exit.
const launchedAll = new Set<Launched>();
process.once('exit', () => {
  for (const child of launchedAll) killGroup(child.process);
});

type Launched = ReturnType<typeof launch>;

// Private: spawns `node script ...args` in `cwd`, collects its output and watches for lines and the exit.
function launch(script: string, args: string[], env: NodeJS.ProcessEnv, cwd = process.cwd()) {
  const started = Date.now();
  const child = spawn(process.execPath, [script, ...args], {
    cwd,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  let exit: Exit | undefined;
  const watchers = new Set<() => void>();
  const notify = () => {
    for (const watcher of [...watchers]) watcher();
  };

  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? ''; // split always gives at least one part
    lines.push(...parts);
    notify();
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<Exit>((resolve) => {
    const done = (code: number | null, signal: NodeJS.Signals | null) => {
      if (exit) return;
      if (partial) lines.push(partial);
      partial = '';
      exit = { code, signal };
      resolve(exit);
      notify();
    };
    child.once('close', done);
    child.once('error', (error) => {
      stderr += `spawn failed: ${error.message}\n`;
      done(null, null);
    });
  });

  const report = () => {
    const status = exit ? `exited with code ${exit.code} (signal ${exit.signal})` : 'is still running';
    const stdout = [...lines, partial].join('\n').trim();
    const command = ['node', path.relative(process.cwd(), script), ...args].join(' ');
    return (
      `${command} ${status}, ${Date.now() - started} ms after its start.\n` +
      `--- stdout ---\n${stdout || '(empty)'}\n--- stderr ---\n${stderr.trim() || '(empty)'}`
    );
  };

  /** The first stdout line (index included) matching `predicate`; rejects at the deadline or at the exit. */
  const waitForLine = (predicate: (line: string, index: number) => boolean, what: string, ms: number) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const found = lines.find(predicate);
        if (found !== undefined) finish(() => resolve(found));
        else if (exit) finish(() => reject(new Error(`Waited for ${what}, but the process exited first.\n${report()}`)));
      };
      const timer = setTimeout(() => finish(() => reject(new Error(`Waited ${ms} ms for ${what} in vain.\n${report()}`))), ms);
      const finish = (settle: () => void) => {
        clearTimeout(timer);
        watchers.delete(check);
        settle();
      };
      watchers.add(check);
      check();
    });

  const waitForExit = async (ms: number, what: string): Promise<Exit> => {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Waited ${ms} ms for ${what} in vain.\n${report()}`)), ms);
    });
    try {
      return await Promise.race([exited, deadline]);
    } finally {
      clearTimeout(timer);
    }
  };

  const launched = {
    process: child as ChildProcess,
    exited,
    stdoutLines: () => lines,
    waitForLine,
    async stop(signal: NodeJS.Signals, ms: number) {
      child.kill(signal);
      try {
        return await waitForExit(ms, `the exit after ${signal}`);
      } catch (error) {
        // A server that does not stop must not linger into the next test (it may hold DATA_DIR).
        await killGroupAndWait(child, exited);
        throw error;
      }
    },
    async finish(ms: number): Promise<Finished> {
      const result = await waitForExit(ms, 'the process to exit by itself');
      return { ...result, stdout: lines.join('\n'), stderr };
    },
    kill: () => killGroupAndWait(child, exited),
  };
  launchedAll.add(launched);
  return launched;
}

// Private: kills the group and waits until none of it is left, an embedded PostgreSQL included,
// so that the next server on the same DATA_DIR finds the cluster free (at most 5 s).
async function killGroupAndWait(child: ChildProcess, exited: Promise<Exit>): Promise<void> {
  killGroup(child);
  await exited;
  const deadline = Date.now() + 5_000;
  while (child.pid !== undefined && Date.now() < deadline) {
    try {
      process.kill(-child.pid, 0);
    } catch {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

// Private: SIGKILL to the child's whole process group (it leads one: spawned detached). The
// group outlives a leader that is gone already while a PostgreSQL it started still runs.
function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // ESRCH: nothing of the group is left.
  }
}

// Private: a pino JSON line, or undefined for any other line.
function parseLog(line: string): LogLine | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    return JSON.parse(line) as LogLine;
  } catch {
    return undefined;
  }
}
