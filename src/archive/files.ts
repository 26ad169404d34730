/**
 * The files of an archive directory (`archive --out DIR`, `restore --from DIR`): where each goes,
 * how it is written so that a crash leaves either the whole file under its name or nothing there
 * (a temporary name in the same directory, `fsync`, rename, `fsync` of the directory), and the
 * manifest of a run, which lists each file with its size, SHA-256 and what it holds.
 *
 * Layout (`docs/export-format.md`, "Archive directory"):
 *   DIR/<YYYY-MM-DD>/<user dir>/<run id>-<batch>.jsonl.gz   one user's conversations of one batch of a run
 *   DIR/manifests/<run id>.json                              the run's manifest, rewritten after each batch
 * The day is the UTC day of the run's start. The user dir is made of the user id alone, safe
 * whatever that id is (`userDir`).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { type Sink, streamSink } from './export.js';

/** What the `format` field of a manifest says. */
export const MANIFEST_FORMAT = 'stateless-chat.archive-manifest';
/** The manifest version this server writes, and the newest it reads. */
export const MANIFEST_VERSION = 1;

/** One file of a run, as its manifest lists it. */
export type ManifestFile = {
  /** Relative to the archive directory, `/`-separated. */
  path: string;
  userId: string;
  bytes: number;
  sha256: string;
  conversations: string[];
  messages: number;
  toolCalls: number;
};

/** The manifest of one archive run. */
export type Manifest = {
  format: typeof MANIFEST_FORMAT;
  version: typeof MANIFEST_VERSION;
  runId: string;
  createdAt: string;
  olderThan: string;
  purge: boolean;
  files: ManifestFile[];
};

/** A new run id: its start (UTC, to the second) and 8 random hex digits, so that no two runs share one. */
export function newRunId(now: Date): string {
  return `${now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}-${randomBytes(4).toString('hex')}`;
}

/**
 * The directory name of `userId`'s files: up to 32 of its characters that are letters, digits,
 * `-` or `_` (others become `_`), for people, then 16 hex digits of its SHA-256, for uniqueness.
 * Never `.`, `..`, empty or with a separator, whatever the id (a JWT `sub` is any text).
 */
export function userDir(userId: string): string {
  const readable = [...userId]
    .slice(0, 32)
    .map((c) => (/^[A-Za-z0-9_-]$/.test(c) ? c : '_'))
    .join('');
  return `${readable}-${createHash('sha256').update(userId).digest('hex').slice(0, 16)}`;
}

/** The relative path of a manifest. */
export const manifestPath = (runId: string) => `manifests/${runId}.json`;

/** `relative` (as a manifest or a conversation's location names it) under `dir`; throws when it would leave `dir`. */
export function inside(dir: string, relative: string): string {
  const root = path.resolve(dir);
  const full = path.resolve(root, relative);
  if (!full.startsWith(root + path.sep)) throw new Error(`archive path ${JSON.stringify(relative)} is outside ${root}`);
  return full;
}

/** A gzip file being written under a temporary name; `commit` makes it durable under its name. */
export type ArchiveFileWriter = {
  sink: Sink;
  /** Ends the file, `fsync`s it, renames it to its name and `fsync`s the directory: its size and SHA-256. */
  commit(): Promise<{ bytes: number; sha256: string }>;
  /** Drops the temporary file. */
  abort(): Promise<void>;
};

/** Starts the gzip file `relative` under `dir` (its directories made), written under a temporary name until `commit`. */
export async function createArchiveFile(dir: string, relative: string): Promise<ArchiveFileWriter> {
  const target = inside(dir, relative);
  await makeDirs(path.dirname(target));
  const temporary = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const hash = createHash('sha256');
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  const gzip = createGzip();
  // `flush`: the file is fsync'ed before it is closed.
  const file: Writable = createWriteStream(temporary, { flags: 'wx', flush: true });
  const done = pipeline(gzip, counter, file);
  // Observed from the start: a failure before commit() is awaited is not an unhandled rejection.
  done.catch(() => {});
  return {
    sink: streamSink(gzip),
    async commit() {
      gzip.end();
      await done;
      await rename(temporary, target);
      await syncDir(path.dirname(target));
      return { bytes, sha256: hash.digest('hex') };
    },
    async abort() {
      gzip.destroy();
      file.destroy();
      await done.catch(() => {});
      await unlink(temporary).catch(() => {});
    },
  };
}

/** Writes `manifest` to `DIR/manifests/<run id>.json` durably (temporary name, `fsync`, rename, `fsync` of the directory). */
export async function writeManifest(dir: string, manifest: Manifest): Promise<string> {
  const relative = manifestPath(manifest.runId);
  const target = inside(dir, relative);
  await makeDirs(path.dirname(target));
  const temporary = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const handle = await open(temporary, 'wx');
  try {
    await handle.writeFile(`${JSON.stringify(manifest, null, 2)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, target);
  await syncDir(path.dirname(target));
  return relative;
}

/** The manifest at `file`, checked to be one this server reads; throws saying what is wrong. */
export async function readManifest(file: string): Promise<Manifest> {
  let value: Partial<Manifest>;
  try {
    value = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new Error(`cannot read the manifest ${file}: ${(error as Error).message}`, { cause: error });
  }
  if (value?.format !== MANIFEST_FORMAT || !Array.isArray(value.files) || typeof value.runId !== 'string') {
    throw new Error(`${file} is not an archive manifest (format ${JSON.stringify(MANIFEST_FORMAT)})`);
  }
  if (typeof value.version !== 'number' || value.version > MANIFEST_VERSION) {
    throw new Error(`${file}: manifest version ${value.version} is newer than this server reads (${MANIFEST_VERSION})`);
  }
  return value as Manifest;
}

/** The SHA-256 (hex) and size of the file at `file`, read as it is on disk. */
export async function fileDigest(file: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    for await (const chunk of createReadStream(file)) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new Error(
      `${missing ? 'archive file missing' : 'cannot read archive file'}: ${file}${missing ? '' : ` (${(error as Error).message})`}`,
      {
        cause: error,
      },
    );
  }
  return { bytes, sha256: hash.digest('hex') };
}

// Private: makes the directory `target` and those above it, each new one made durable in its parent.
async function makeDirs(target: string): Promise<void> {
  const first = await mkdir(target, { recursive: true });
  if (first === undefined) return;
  // `first` is the topmost directory made: sync each made one, and the parent of the topmost.
  let current = target;
  const made: string[] = [];
  while (current.length >= first.length) {
    made.push(current);
    current = path.dirname(current);
  }
  for (const directory of [...made, path.dirname(first)]) await syncDir(directory);
}

// Private: `fsync` of a directory, so that the names made in it outlive a crash.
async function syncDir(directory: string): Promise<void> {
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
