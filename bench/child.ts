/**
 * A measured child process (the server, the reference): started with its environment, its URL
 * read from the line it prints once it listens, its CPU time and memory read from `/proc/<pid>`
 * (Linux only), stopped with SIGTERM.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

export type Memory = { rssMb: number; hwmMb: number };

export type Child = {
  pid: number;
  /** The URL the child printed. */
  url: string;
  /** User plus system CPU time the child has used so far, in milliseconds (`/proc/<pid>/stat`). */
  cpuMs(): number;
  /** Resident memory now and its high-water mark (`/proc/<pid>/status` VmRSS, VmHWM). */
  memory(): Memory;
  /** The last lines it wrote on stderr, for the error message when something broke. */
  stderrTail(): string;
  /** SIGTERM, then SIGKILL after `graceMs` (default 15 s); resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
};

const START_TIMEOUT_MS = 60_000;
const STDERR_TAIL_CHARS = 4_000;
/** Clock ticks per second of `/proc/<pid>/stat` times. */
const CLOCK_TICKS = clockTicks();

/**
 * Starts `node <script>` with `env` and waits, at most a minute, for a stdout line matching
 * `urlLine` (its first group: the URL). Of this process's environment only `PATH` and `HOME` are
 * passed on: a setting of the shell (`MCP_CONFIG`, `OPENAI_API_KEY`) must not change what is measured.
 */
export async function startChild(script: string, env: Record<string, string>, urlLine: RegExp): Promise<Child> {
  const inherited = Object.fromEntries(['PATH', 'HOME'].flatMap((name) => (process.env[name] ? [[name, process.env[name]]] : [])));
  const child = spawn(process.execPath, [script], { env: { ...inherited, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-STDERR_TAIL_CHARS);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    // Read to the end (a full pipe would block the child), kept only until the URL is found.
    let stdout: string | null = '';
    const timer = setTimeout(() => fail(`did not print its URL within ${START_TIMEOUT_MS / 1000} s`), START_TIMEOUT_MS);
    const fail = (why: string) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${script} ${why}; stderr:\n${stderr}`));
    };
    // The bench sends no signal before the URL: a signal here came from another process.
    const early = (code: number | null, signal: string | null) =>
      fail(signal ? `was killed by ${signal} from outside the bench before listening` : `exited with code ${code} before listening`);
    child.once('exit', early);
    child.stdout?.on('data', (chunk: Buffer) => {
      if (stdout === null) return;
      stdout += chunk.toString('utf8');
      const found = urlLine.exec(stdout)?.[1];
      if (found) {
        stdout = null;
        clearTimeout(timer);
        child.off('exit', early);
        resolve(found);
      }
    });
  });
  const pid = pidOf(child);
  return {
    pid,
    url,
    cpuMs: () => cpuMs(pid),
    memory: () => memory(pid),
    stderrTail: () => stderr,
    async stop(graceMs = 15_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(killer);
    },
  };
}

/** CPU milliseconds (user + system) of process `pid` so far. */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime: fields 14 and 15
  return (ticks * 1000) / CLOCK_TICKS;
}

/** VmRSS and VmHWM of process `pid`, in MB. */
export function memory(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { rssMb: kb('VmRSS') / 1024, hwmMb: kb('VmHWM') / 1024 };
}

/**
 * Samples the resident memory of `child` every `intervalMs` (default 50 ms) until `stop()`,
 * which returns the highest sample and the samples themselves (seconds since the start, MB).
 */
export function sampleMemory(child: Child, intervalMs = 50): { stop(): { peakMb: number; samples: [number, number][] } } {
  const started = performance.now();
  const samples: [number, number][] = [];
  const take = () => samples.push([(performance.now() - started) / 1000, child.memory().rssMb]);
  take();
  const timer = setInterval(take, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      return { peakMb: Math.max(...samples.map(([, mb]) => mb)), samples };
    },
  };
}

function pidOf(child: ChildProcess): number {
  if (child.pid === undefined) throw new Error('the child process has no pid (it did not start)');
  return child.pid;
}

// Private: `getconf CLK_TCK`, 100 (Linux's value nearly everywhere) when it cannot be asked.
function clockTicks(): number {
  try {
    const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isInteger(ticks) && ticks > 0 ? ticks : 100;
  } catch {
    return 100;
  }
}
