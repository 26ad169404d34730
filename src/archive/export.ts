/**
 * Export: conversations streamed from the database into a `Sink` in one of the layouts of
 * `layouts.ts`, with memory that stays the same whatever their number and size. Conversations
 * are chosen by keyset, `EXPORT_BATCH` keys at a time; each is read in its own read-only
 * REPEATABLE READ transaction (`readSnapshot`: one snapshot, so its counters agree with its
 * messages even while turns run), its messages by keyset on `seq`, `EXPORT_BATCH` at a time with their tool calls, and
 * written as they are read, each batch awaiting the sink (backpressure) before the next is read.
 *
 * The SQL is in `db/stores/archive.ts`; the CLI (`cli.ts`) and the GraphQL field
 * `exportConversation` call this module, as will archive and restore.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { EntityManager } from '@mikro-orm/postgresql';
import { type Reader, readSnapshot } from '../db/direct.js';
import {
  type ArchiveFilter,
  type ArchiveKey,
  archiveKeys,
  readConversationColumns,
  readMessageBatch,
  readToolCallsOf,
} from '../db/stores/archive.js';
import { AppError } from '../errors.js';
import type { MessageRecord } from './format.js';
import { type ExportFormat, LAYOUTS, type Layout } from './layouts.js';

export type { ArchiveFilter };

/** Rows read per statement: conversation keys, and messages of one conversation. */
export const EXPORT_BATCH = 500;

// Private: text is handed to the sink in pieces of about this many characters (a batch of long
// messages is not held whole as one string).
const CHUNK_CHARS = 65_536;

/** Where export writes: text, piece after piece; `write` resolves when the next piece may follow. */
export type Sink = { write(text: string): Promise<void> };

/** What an export wrote. */
export type ExportCounts = { conversations: number; messages: number; toolCalls: number };

export type ExportOptions = {
  /** Rows per statement (default `EXPORT_BATCH`). */
  batchSize?: number;
  /** Called after each batch of messages written, with the counts so far. */
  onProgress?: (counts: ExportCounts) => void;
};

/**
 * Writes every conversation that passes `filter`, in `(user_id, created_at, id)` order, to `sink`
 * in `format`. Returns the counts.
 */
export async function exportConversations(
  em: EntityManager,
  filter: ArchiveFilter,
  format: ExportFormat,
  sink: Sink,
  options: ExportOptions = {},
): Promise<ExportCounts> {
  const layout = LAYOUTS[format];
  const batchSize = options.batchSize ?? EXPORT_BATCH;
  const counts: ExportCounts = { conversations: 0, messages: 0, toolCalls: 0 };
  await sink.write(layout.start);
  let after: ArchiveKey | null = null;
  for (;;) {
    const keys = await archiveKeys(em, filter, after, batchSize);
    for (const key of keys) {
      // Deleted since its key was read: left out.
      await readSnapshot(em, (read) => writeConversation(read, key.userId, key.id, layout, sink, counts, { ...options, batchSize }));
    }
    if (keys.length < batchSize) break;
    after = keys[keys.length - 1] ?? null;
  }
  await sink.write(layout.end(counts.conversations));
  return counts;
}

/**
 * Writes the user's conversation `id` to `sink` with `layout`, adding to `counts` (its
 * `conversations` is the conversation's index in the output), its statements run by `read`: in
 * one transaction for a consistent read (`readSnapshot`, or the caller's, with `ormReader`).
 * Returns false, writing nothing, when the user has no such conversation.
 */
export async function writeConversation(
  read: Reader,
  userId: string,
  id: string,
  layout: Layout,
  sink: Sink,
  counts: ExportCounts,
  options: ExportOptions = {},
): Promise<boolean> {
  const batchSize = options.batchSize ?? EXPORT_BATCH;
  const conversation = await readConversationColumns(read, userId, id);
  if (!conversation) return false;
  let text = layout.head(conversation, counts.conversations);
  let index = 0;
  let afterSeq = 0;
  for (;;) {
    const batch = await readMessageBatch(read, userId, id, afterSeq, batchSize);
    if (batch.length === 0) break;
    const calls = await readToolCallsOf(
      read,
      userId,
      id,
      batch.map((message) => message.id),
    );
    const callsOf = Map.groupBy(calls, (call) => call.messageId);
    for (const message of batch) {
      const record: MessageRecord = {
        ...message,
        toolCalls: (callsOf.get(message.id) ?? []).map(({ messageId: _, ...call }) => call),
      };
      text += layout.message(record, index++);
      counts.toolCalls += record.toolCalls.length;
      if (text.length >= CHUNK_CHARS) {
        await sink.write(text);
        text = '';
      }
    }
    counts.messages += batch.length;
    await sink.write(text);
    text = '';
    options.onProgress?.(counts);
    afterSeq = batch[batch.length - 1]?.seq ?? afterSeq;
    if (batch.length < batchSize) break;
  }
  await sink.write(text + layout.tail(conversation));
  counts.conversations += 1;
  return true;
}

/** The largest document `conversationDocument` makes by default: 10 MiB. */
export const DOCUMENT_MAX_BYTES = 10 * 1024 * 1024;

/**
 * The user's conversation `id` as one document in `format` (a JSONL line, or a Markdown
 * transcript), or null when the user has none. Throws EXPORT_TOO_LARGE past `maxBytes` (default
 * `DOCUMENT_MAX_BYTES`), saying to use the CLI.
 */
export async function conversationDocument(
  em: EntityManager,
  userId: string,
  id: string,
  format: ExportFormat,
  maxBytes = DOCUMENT_MAX_BYTES,
): Promise<string | null> {
  const parts: string[] = [];
  let bytes = 0;
  const sink: Sink = {
    async write(text) {
      bytes += Buffer.byteLength(text);
      if (bytes > maxBytes) {
        throw new AppError(
          'EXPORT_TOO_LARGE',
          `The conversation's export is larger than ${maxBytes} bytes; export it with the command line: stateless-chat export --conversation ${id}`,
        );
      }
      parts.push(text);
    },
  };
  const counts: ExportCounts = { conversations: 0, messages: 0, toolCalls: 0 };
  const found = await readSnapshot(em, (read) => writeConversation(read, userId, id, LAYOUTS[format], sink, counts));
  return found ? parts.join('') : null;
}

/** A sink into `out`, awaiting `drain` when its buffer is full, failing when `out` fails. */
export function streamSink(out: Writable): Sink {
  let failure: Error | undefined;
  out.on('error', (error) => {
    failure = error;
  });
  return {
    async write(text) {
      if (failure) throw failure;
      if (text === '' || out.write(text)) return;
      await once(out, 'drain'); // rejects when `out` fails meanwhile
    },
  };
}

/** A sink that only hashes what it is given (SHA-256): import compares a stored conversation with a record this way. */
export function hashSink(): Sink & { digest(): string } {
  const hash = createHash('sha256');
  return {
    async write(text) {
      hash.update(text);
    },
    digest: () => hash.digest('hex'),
  };
}
