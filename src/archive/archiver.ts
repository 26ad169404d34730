/**
 * Archive runs (`stateless-chat archive`): conversations inactive for `olderThan` (or ARCHIVED
 * already), not purged and with no live lease, written to gzip JSONL files of the archive format
 * (`format.ts`), one per user and batch of the run, listed in the run's manifest (`files.ts`);
 * with `purge`, their messages and tool calls then deleted, the row kept (ARCHIVED, `purged_at`,
 * `archive_location`).
 *
 * A run goes in batches of `batchSize` conversations, each in ONE transaction that holds the rows'
 * locks from their choice (`for update skip locked`: another archiver passes them over, so each
 * conversation is archived by one run) until the purge commits, in this order:
 *   1. claim the batch;                  log "archive batch claimed"
 *   2. write each user's file durably;   log "archive files written"
 *   3. rewrite the manifest durably;     log "archive manifest written"
 *   4. read every file back: its size and SHA-256 against the manifest, every line parsed and the
 *      same bytes as written, every conversation there once;  log "archive batch verified"
 *   5. with `purge`: purge each conversation unchanged since it was read (else it is left whole,
 *      logged), then commit;            log "archive batch committed"
 * A crash before the commit leaves every row of the batch as it was (its files, if any, are
 * unused: a rerun archives those conversations again into files of its own); after it, the batch
 * is in verified files. Never neither.
 */
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { EntityManager } from '@mikro-orm/postgresql';
import { ormReader } from '../db/direct.js';
import { type ClaimedConversation, claimArchiveBatch, countArchivable, purgeConversation } from '../db/stores/purge.js';
import type { Logger } from '../log.js';
import { type ExportCounts, hashSink, type Sink, writeConversation } from './export.js';
import {
  createArchiveFile,
  fileDigest,
  inside,
  MANIFEST_FORMAT,
  MANIFEST_VERSION,
  type Manifest,
  type ManifestFile,
  manifestPath,
  newRunId,
  readManifest,
  userDir,
  writeManifest,
} from './files.js';
import { parseRecord } from './format.js';
import { openArchive } from './import.js';
import { LAYOUTS } from './layouts.js';

/** Conversations per batch (and per transaction) of an archive run. */
export const ARCHIVE_BATCH = 100;

export type ArchiveRunOptions = {
  /** The archive directory. */
  out: string;
  /** Inactivity before a conversation is taken, in milliseconds, and as the operator wrote it. */
  olderThanMs: number;
  olderThan: string;
  /** Delete the messages and tool calls of the archived conversations (default false). */
  purge?: boolean;
  /** Count what would be archived, write nothing (default false). */
  dryRun?: boolean;
  /** Conversations per batch (default `ARCHIVE_BATCH`). */
  batchSize?: number;
  /** Called after each batch, with the totals so far. */
  onProgress?: (summary: ArchiveSummary) => void;
  now?: Date;
};

/** What an archive run did (or, dry, would do: conversations and messages only). */
export type ArchiveSummary = {
  runId: string;
  /** The manifest's path relative to the archive directory; null when nothing was written. */
  manifest: string | null;
  conversations: number;
  messages: number;
  toolCalls: number;
  files: number;
  bytes: number;
  purged: number;
  /** Changed between their export and their purge: archived, not purged. */
  unpurged: number;
};

/** Runs one archive (see the module header); returns what it did. */
export async function archiveConversations(em: EntityManager, options: ArchiveRunOptions, log: Logger): Promise<ArchiveSummary> {
  const now = options.now ?? new Date();
  const cutoff = new Date(now.getTime() - options.olderThanMs);
  const runId = newRunId(now);
  const summary: ArchiveSummary = {
    runId,
    manifest: null,
    conversations: 0,
    messages: 0,
    toolCalls: 0,
    files: 0,
    bytes: 0,
    purged: 0,
    unpurged: 0,
  };
  if (options.dryRun) {
    const counts = await countArchivable(em, cutoff);
    return { ...summary, ...counts };
  }
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    runId,
    createdAt: now.toISOString(),
    olderThan: options.olderThan,
    purge: options.purge ?? false,
    files: [],
  };
  const day = now.toISOString().slice(0, 10);
  const batchSize = options.batchSize ?? ARCHIVE_BATCH;
  let after: ClaimedConversation | null = null;
  for (let batch = 1; ; batch++) {
    const taken: ClaimedConversation[] = await em.transactional(async (tx) => {
      const claimed = await claimArchiveBatch(tx, cutoff, after, batchSize);
      if (claimed.length === 0) return claimed;
      log.debug({ runId, batch, conversations: claimed.length }, 'archive batch claimed');
      const files = await writeBatch(tx, options.out, claimed, `${day}`, `${runId}-${String(batch).padStart(4, '0')}`);
      log.debug({ runId, batch, files: files.length }, 'archive files written');
      manifest.files.push(...files.map((file) => file.entry));
      summary.manifest = await writeManifest(options.out, manifest);
      log.debug({ runId, batch, manifest: summary.manifest }, 'archive manifest written');
      await verifyBatch(options.out, manifest, files);
      log.debug({ runId, batch }, 'archive batch verified');
      for (const file of files) {
        summary.files += 1;
        summary.bytes += file.entry.bytes;
        summary.messages += file.entry.messages;
        summary.toolCalls += file.entry.toolCalls;
      }
      summary.conversations += claimed.length;
      if (options.purge) {
        for (const file of files) {
          const location = { file: file.entry.path, sha256: file.entry.sha256, manifest: summary.manifest };
          for (const conversation of file.taken) {
            if (await purgeConversation(tx, conversation, location)) summary.purged += 1;
            else {
              summary.unpurged += 1;
              log.warn(
                { runId, conversationId: conversation.id, userId: conversation.userId },
                'conversation changed since it was archived: its copy stays, its rows are not purged',
              );
            }
          }
        }
      }
      return claimed;
    });
    if (taken.length > 0) log.debug({ runId, batch, purged: summary.purged }, 'archive batch committed');
    options.onProgress?.(summary);
    if (taken.length < batchSize) break;
    after = taken[taken.length - 1] ?? null;
  }
  log.info({ ...summary }, 'archive done');
  return summary;
}

// Private: one file of a batch, with what was written into it (each conversation's line hashed).
type WrittenFile = { entry: ManifestFile; taken: ClaimedConversation[]; lines: Map<string, string> };

// Private: writes the batch's conversations, one file per user, read in the batch's transaction.
async function writeBatch(
  tx: EntityManager,
  out: string,
  claimed: ClaimedConversation[],
  day: string,
  name: string,
): Promise<WrittenFile[]> {
  const read = ormReader(tx);
  const written: WrittenFile[] = [];
  for (const [userId, taken] of Map.groupBy(claimed, (conversation) => conversation.userId)) {
    const relative = `${day}/${userDir(userId)}/${name}.jsonl.gz`;
    const file = await createArchiveFile(out, relative);
    const counts: ExportCounts = { conversations: 0, messages: 0, toolCalls: 0 };
    const lines = new Map<string, string>();
    try {
      for (const conversation of taken) {
        const line = hashSink();
        const sink: Sink = {
          async write(text) {
            await line.write(text);
            await file.sink.write(text);
          },
        };
        if (!(await writeConversation(read, userId, conversation.id, LAYOUTS.jsonl, sink, counts))) {
          throw new Error(`conversation ${conversation.id} of user ${JSON.stringify(userId)} vanished while locked`);
        }
        lines.set(conversation.id, line.digest());
      }
      const { bytes, sha256 } = await file.commit();
      written.push({
        entry: {
          path: relative,
          userId,
          bytes,
          sha256,
          conversations: taken.map((conversation) => conversation.id),
          messages: counts.messages,
          toolCalls: counts.toolCalls,
        },
        taken,
        lines,
      });
    } catch (error) {
      await file.abort();
      throw error;
    }
  }
  return written;
}

// Private: reads back the manifest and each file of the batch as they are on disk; throws at the first difference.
async function verifyBatch(out: string, manifest: Manifest, files: WrittenFile[]): Promise<void> {
  const stored = await readManifest(inside(out, manifestPath(manifest.runId)));
  if (JSON.stringify(stored) !== JSON.stringify(manifest))
    throw new Error(`the manifest ${manifestPath(manifest.runId)} reads back different`);
  for (const { entry, lines } of files) {
    const where = inside(out, entry.path);
    const digest = await fileDigest(where);
    if (digest.bytes !== entry.bytes || digest.sha256 !== entry.sha256) {
      throw new Error(`${where} reads back with ${digest.bytes} bytes, SHA-256 ${digest.sha256}; written: ${entry.bytes}, ${entry.sha256}`);
    }
    const seen = new Set<string>();
    let messages = 0;
    let toolCalls = 0;
    let number = 0;
    const archive = await openArchive(where);
    try {
      archive.input.setEncoding('utf8');
      for await (const text of createInterface({ input: archive.input, crlfDelay: Number.POSITIVE_INFINITY })) {
        number += 1;
        const record = parseRecord(text, number);
        const { id } = record.conversation;
        const hash = createHash('sha256').update(`${text}\n`).digest('hex');
        if (lines.get(id) !== hash || seen.has(id)) throw new Error(`${where} line ${number}: conversation ${id} reads back different`);
        seen.add(id);
        messages += record.messages.length;
        toolCalls += record.messages.reduce((sum, message) => sum + message.toolCalls.length, 0);
      }
    } finally {
      archive.input.destroy();
    }
    if (seen.size !== lines.size || messages !== entry.messages || toolCalls !== entry.toolCalls) {
      throw new Error(
        `${where} reads back with ${seen.size} conversations, ${messages} messages, ${toolCalls} tool calls; written otherwise`,
      );
    }
  }
}
