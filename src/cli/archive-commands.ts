/**
 * The `export`, `import`, `archive` and `restore` commands, their options checked already
 * (`options.ts`): the output file or the input archive, progress on a terminal, and the summary
 * line. The work itself is `archive/export.ts`, `archive/import.ts`, `archive/archiver.ts` and
 * `archive/restore.ts`.
 */
import { type FileHandle, open, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { ArchiveSummary } from '../archive/archiver.js';
import { type ArchiveFilter, exportConversations, type Sink, streamSink } from '../archive/export.js';
import { importFile } from '../archive/import.js';
import type { ExportFormat } from '../archive/layouts.js';
import type { RestoreSummary } from '../archive/restore.js';
import { countArchive } from '../db/stores/archive.js';
import { countArchivable, type PurgedFilter } from '../db/stores/purge.js';
import type { Logger } from '../log.js';
import { formatCount, type Progress, progress } from './progress.js';

/** The options of `export`, as commander parsed and checked them. */
export type ExportCommandOptions = {
  user?: string;
  conversation?: string[];
  status?: 'active' | 'archived' | 'expired';
  updatedAfter?: string;
  updatedBefore?: string;
  format: ExportFormat;
  out?: string;
  force?: boolean;
};

/** What an export command did, for its summary line. */
export type ExportSummary = { conversations: number; messages: number; toolCalls: number; bytes: number };

/**
 * Runs `export`: opens the output (refusing an existing file without `force`), streams the
 * conversations into it (gzip when its name ends in `.gz`), and prints the summary line on stderr.
 * A failed export removes the file it created.
 */
export async function runExport(em: EntityManager, options: ExportCommandOptions): Promise<ExportSummary> {
  const started = performance.now();
  const filter: ArchiveFilter = {
    userId: options.user,
    conversationIds: options.conversation,
    status: options.status,
    updatedAfter: options.updatedAfter,
    updatedBefore: options.updatedBefore,
  };
  const path = options.out && options.out !== '-' ? options.out : null;
  const output = path ? await openOutput(path, options.force ?? false) : stdoutOutput();
  const counted = await countArchive(em, filter);
  if (counted.purged > 0) {
    process.stderr.write(
      `warning: ${formatCount(counted.purged)} of the conversations are purged: exported without their messages, which are in ` +
        'their archive files (stateless-chat restore brings them back)\n',
    );
  }
  const bar = progress('messages', counted.messages);
  let counts: Awaited<ReturnType<typeof exportConversations>>;
  try {
    counts = await exportConversations(em, filter, options.format, output.sink, { onProgress: (so) => bar.update(so.messages) });
    await output.close();
  } catch (error) {
    bar.stop();
    await output.abort();
    throw error;
  }
  bar.stop();
  const summary = { ...counts, bytes: output.bytes() };
  process.stderr.write(
    `exported ${formatCount(summary.conversations)} conversation${summary.conversations === 1 ? '' : 's'}, ` +
      `${formatCount(summary.messages)} messages, ${formatCount(summary.toolCalls)} tool calls, ${formatCount(summary.bytes)} bytes` +
      `${path ? ` to ${path}` : ''} in ${((performance.now() - started) / 1000).toFixed(1)} s, ` +
      `peak memory ${formatCount(Math.round(process.resourceUsage().maxRSS / 1024))} MB\n`,
  );
  return summary;
}

/**
 * Runs `import`: every record of `file`, each conversation in its own transaction; a conflict is
 * reported on stderr and skipped (replaced with `replace`). Prints the summary line on stdout.
 * Returns the counts; throws at the first line that cannot be imported.
 */
export async function runImport(em: EntityManager, file: string, options: { replace?: boolean }) {
  // Made at the first record, when the file's size is known.
  let bar: Progress | undefined;
  const counts = await importFile(em, file, {
    replace: options.replace,
    onRecord(line, record, outcome) {
      if (outcome === 'conflict') {
        process.stderr.write(
          `line ${line}: conversation ${record.conversation.id} of user ${JSON.stringify(record.conversation.userId)} ` +
            'differs from the stored one: skipped (--replace replaces it)\n',
        );
      }
    },
    onProgress(read, size) {
      bar ??= progress('bytes', size);
      bar.update(read);
    },
  }).finally(() => bar?.stop());
  process.stdout.write(
    `imported ${formatCount(counts.inserted)}, unchanged ${formatCount(counts.unchanged)}, replaced ${formatCount(counts.replaced)}, ` +
      `skipped ${formatCount(counts.conflict)} (conflicts)\n`,
  );
  return counts;
}

// Private: where an export writes, with its byte count; `close` ends it, `abort` drops it.
type Output = { sink: Sink; bytes(): number; close(): Promise<void>; abort(): Promise<void> };

// Private: standard output (bytes counted as written).
function stdoutOutput(): Output {
  const sink = streamSink(process.stdout);
  let bytes = 0;
  return {
    sink: {
      write(text) {
        bytes += Buffer.byteLength(text);
        return sink.write(text);
      },
    },
    bytes: () => bytes,
    close: async () => {},
    abort: async () => {},
  };
}

// Private: the file `path`, new unless `force`; gzip when its name ends in `.gz` (bytes: of the file).
async function openOutput(path: string, force: boolean): Promise<Output> {
  let handle: FileHandle;
  try {
    handle = await open(path, force ? 'w' : 'wx');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new Error(`${path} exists: give --force to overwrite it`, { cause: error });
    throw new Error(`cannot write ${path}: ${(error as Error).message}`, { cause: error });
  }
  const file = handle.createWriteStream();
  let target: Writable = file;
  let done: Promise<void>;
  if (path.endsWith('.gz')) {
    const gzip = createGzip();
    target = gzip;
    done = pipeline(gzip, file);
  } else {
    done = finished(file);
  }
  // Observed from the start: a failure before close() is awaited is not an unhandled rejection.
  done.catch(() => {});
  return {
    sink: streamSink(target),
    bytes: () => file.bytesWritten,
    async close() {
      target.end();
      await done;
    },
    async abort() {
      target.destroy();
      file.destroy();
      await unlink(path).catch(() => {});
    },
  };
}

/** The options of `archive`, as commander parsed and checked them. */
export type ArchiveCommandOptions = {
  olderThan: { ms: number; text: string };
  out: string;
  purge?: boolean;
  dryRun?: boolean;
  batchSize?: number;
};

/**
 * Runs `archive` (`archive/archiver.ts`): progress on a terminal, then the summary line on stderr
 * (what a dry run would archive, without writing anything).
 */
export async function runArchive(em: EntityManager, options: ArchiveCommandOptions, log: Logger): Promise<ArchiveSummary> {
  const started = performance.now();
  const { archiveConversations } = await import('../archive/archiver.js');
  const run = {
    out: options.out,
    olderThanMs: options.olderThan.ms,
    olderThan: options.olderThan.text,
    purge: options.purge,
    batchSize: options.batchSize,
  };
  if (options.dryRun) {
    const dry = await archiveConversations(em, { ...run, dryRun: true }, log);
    process.stderr.write(
      `dry run: would archive ${formatCount(dry.conversations)} conversation${dry.conversations === 1 ? '' : 's'} ` +
        `(${formatCount(dry.messages)} messages)${options.purge ? ' and purge them' : ''}; nothing written\n`,
    );
    return dry;
  }
  const bar = progress(
    'conversations',
    process.stderr.isTTY ? (await countArchivable(em, new Date(Date.now() - run.olderThanMs))).conversations : 0,
  );
  const summary = await archiveConversations(em, { ...run, onProgress: (so) => bar.update(so.conversations) }, log).finally(() =>
    bar.stop(),
  );
  process.stderr.write(
    `archived ${formatCount(summary.conversations)} conversation${summary.conversations === 1 ? '' : 's'} ` +
      `(${formatCount(summary.messages)} messages, ${formatCount(summary.toolCalls)} tool calls) into ${formatCount(summary.files)} ` +
      `file${summary.files === 1 ? '' : 's'}, ${formatCount(summary.bytes)} bytes; purged ${formatCount(summary.purged)}` +
      `${summary.unpurged ? ` (${formatCount(summary.unpurged)} changed meanwhile, kept)` : ''}` +
      `${summary.manifest ? `; manifest ${join(options.out, summary.manifest)}` : ''} in ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
  );
  return summary;
}

/** The options of `restore`, as commander parsed them (one selection at least, checked by the command). */
export type RestoreCommandOptions = { conversation?: string[]; user?: string; manifest?: string; from?: string };

/**
 * Runs `restore` (`archive/restore.ts`): the archive directory is `from`, else the one the
 * manifest is in (`<dir>/manifests/<run id>.json`). Reports each conversation asked for that is not
 * purged on stderr, then the summary line.
 */
export async function runRestore(em: EntityManager, options: RestoreCommandOptions): Promise<RestoreSummary> {
  const started = performance.now();
  const [{ restoreConversations }, { readManifest, manifestPath }] = await Promise.all([
    import('../archive/restore.js'),
    import('../archive/files.js'),
  ]);
  const filter: PurgedFilter = { conversationIds: options.conversation, userId: options.user };
  let requested = options.conversation ?? [];
  let from = options.from;
  if (options.manifest) {
    const manifest = await readManifest(options.manifest);
    filter.manifest = manifestPath(manifest.runId);
    requested = manifest.files.flatMap((file) => file.conversations);
    from ??= dirname(dirname(resolve(options.manifest)));
  }
  if (!from) throw new Error('restore needs --from <dir>, the archive directory (or --manifest inside it)');
  let bar: Progress | undefined;
  const summary = await restoreConversations(em, from, filter, requested, {
    onProgress(so, total) {
      bar ??= progress('conversations', total);
      bar.update(so.conversations + so.skipped.length);
    },
  }).finally(() => bar?.stop());
  for (const id of summary.skipped) process.stderr.write(`conversation ${id} is not purged: skipped\n`);
  process.stderr.write(
    `restored ${formatCount(summary.conversations)} conversation${summary.conversations === 1 ? '' : 's'}, ` +
      `${formatCount(summary.messages)} messages, ${formatCount(summary.toolCalls)} tool calls from ${formatCount(summary.files)} ` +
      `file${summary.files === 1 ? '' : 's'}; skipped ${formatCount(summary.skipped.length)} in ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
  );
  return summary;
}
