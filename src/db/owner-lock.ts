/**
 * The owner lock of an embedded PostgreSQL cluster: which live process runs it, so that no other
 * process stops it, and how to reach it (what the owner writes besides who it is).
 *
 * The lock is a folder of numbered files, `<dir>/1.json`, `<dir>/2.json`, ...; the highest number
 * is the lock in force. A process takes the lock by creating the next number after finding the
 * highest one's holder gone (it exited, or it released the lock): created with `link()`, which is
 * atomic and fails when the name exists, so of two processes that race for one number exactly one
 * gets it, and the other looks again and finds the winner alive. The highest file is never
 * deleted nor replaced by anyone but its holder (a clean stop only marks it released), so a
 * process acting on what it read a moment ago can never take a number someone else holds.
 *
 * A holder is a pid and that process's start time (`/proc/<pid>/stat`, field 22): a pid reused by
 * another process after the holder died is not taken for the holder. Without `/proc` the pid alone
 * is compared.
 */
import { readFileSync } from 'node:fs';
import { link, mkdir, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** A process, known by its pid and its start time (null where `/proc` cannot tell it). */
export type Holder = { pid: number; startTime: string | null };

/** A lock this process holds: its entry can be rewritten (by this process only) and released. */
export type HeldLock<T extends Holder> = {
  /** The file of the lock in force, for messages. */
  file: string;
  update(entry: T): Promise<void>;
  /** Marks the lock released; the next process takes the next number. */
  release(): Promise<void>;
};

type Entry<T> = T & { released?: boolean };

const NUMBERED = /^(\d+)\.json$/;
/** Rounds of look-and-create before giving up: each lost race means another process took the lock. */
const TAKE_ROUNDS = 50;

/** This process as a holder. */
export function thisProcess(): Holder {
  return { pid: process.pid, startTime: startTimeOf(process.pid) };
}

/** Whether `holder` still runs: its pid is alive and, where `/proc` tells, it started when it did. */
export function isAlive(holder: Holder): boolean {
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    // EPERM: alive, but another user's.
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return holder.startTime === null || startTimeOf(holder.pid) === holder.startTime;
}

/**
 * Takes the lock in `dir` for `entry` (which names this process), or tells the live process that
 * holds it. Both outcomes are certain: never two holders at once.
 */
export async function takeLock<T extends Holder>(dir: string, entry: T): Promise<{ held: HeldLock<T> } | { holder: T }> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (let round = 0; round < TAKE_ROUNDS; round++) {
    const { number, current } = await highest<T>(dir);
    if (current === 'vanished') continue;
    if (current && !current.released && isAlive(current)) return { holder: current };
    const file = path.join(dir, `${number + 1}.json`);
    if (await createWith(file, JSON.stringify(entry))) {
      // The numbers below are history now: nobody reads below the highest.
      await removeBelow(dir, number + 1);
      return { held: heldLock(file, entry) };
    }
  }
  throw new Error(`could not take the lock in ${dir}: it changed hands ${TAKE_ROUNDS} times while trying`);
}

/** The live holder of the lock in `dir`, if any (released or dead holders are none). */
export async function liveHolder<T extends Holder>(dir: string): Promise<T | undefined> {
  for (;;) {
    const { current } = await highest<T>(dir);
    if (current === 'vanished') continue;
    return current && !current.released && isAlive(current) ? current : undefined;
  }
}

// Private: the highest numbered entry; `undefined` when there is none or it cannot be parsed
// (written by hand: taken as free), 'vanished' when it was removed while being read.
async function highest<T>(dir: string): Promise<{ number: number; current: Entry<T> | undefined | 'vanished' }> {
  const names = await readdir(dir).catch(ifMissing([] as string[]));
  const number = Math.max(0, ...names.map((name) => Number(NUMBERED.exec(name)?.[1] ?? 0)));
  if (number === 0) return { number, current: undefined };
  const text = await readFile(path.join(dir, `${number}.json`), 'utf8').catch(ifMissing(undefined));
  if (text === undefined) return { number, current: 'vanished' };
  try {
    return { number, current: JSON.parse(text) as Entry<T> };
  } catch {
    return { number, current: undefined };
  }
}

function heldLock<T extends Holder>(file: string, entry: T): HeldLock<T> {
  let last = entry;
  return {
    file,
    // Written whole to a temporary name and renamed over: readers see the old entry or the new.
    async update(next) {
      await replaceWith(file, JSON.stringify(next));
      last = next;
    },
    release: () => replaceWith(file, JSON.stringify({ ...last, released: true })).catch(ifMissing(undefined)),
  };
}

// Private: creates `file` holding `text`, or returns false when it exists. The text is written
// before the name appears, so no reader ever sees a half-written entry.
async function createWith(file: string, text: string): Promise<boolean> {
  const temporary = `${file}.${process.pid}.${crypto.randomUUID()}.tmp`;
  await writeFile(temporary, text, { mode: 0o600 });
  try {
    await link(temporary, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    await unlink(temporary).catch(ifMissing(undefined));
  }
}

async function replaceWith(file: string, text: string): Promise<void> {
  const temporary = `${file}.${process.pid}.${crypto.randomUUID()}.tmp`;
  await writeFile(temporary, text, { mode: 0o600 });
  await rename(temporary, file);
}

async function removeBelow(dir: string, number: number): Promise<void> {
  for (const name of await readdir(dir).catch(ifMissing([] as string[]))) {
    const found = NUMBERED.exec(name);
    if (found && Number(found[1]) < number) await unlink(path.join(dir, name)).catch(ifMissing(undefined));
  }
}

// Private: field 22 of /proc/<pid>/stat, the clock tick the process started at. The command name
// (field 2) may hold spaces and parentheses, so fields are counted after its last ')'.
function startTimeOf(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function ifMissing<T>(fallback: T) {
  return (error: NodeJS.ErrnoException): T => {
    if (error.code === 'ENOENT') return fallback;
    throw error;
  };
}
