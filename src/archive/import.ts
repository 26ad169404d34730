/**
 * Import: archive records (`format.ts`) back into the database, exactly as they were exported
 * and idempotently. Each conversation is written in its own transaction, all of it or nothing:
 * absent, it is inserted with its messages and tool calls (multi-row inserts, every column as the
 * record has it, the counters included); present and equal to the record, nothing is written;
 * present and different, it is a conflict, left as it is unless `replace` (then it is deleted and
 * inserted again, in that same transaction). Equal means the same canonical bytes: the stored
 * conversation is exported (into a hash) and compared with the record's own line.
 *
 * `importFile` reads a file line by line (gzip or not), so that memory holds one line at a time.
 */
import { open } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { EntityManager } from '@mikro-orm/postgresql';
import { ormReader } from '../db/direct.js';
import { insertConversationColumns, insertMessageColumns, insertToolCallColumns, lockConversation } from '../db/stores/archive.js';
import { deleteConversation } from '../db/stores/conversations.js';
import { hashSink, writeConversation } from './export.js';
import { type ConversationRecord, parseRecord } from './format.js';
import { LAYOUTS } from './layouts.js';

/** What importing one record did: `conflict` is a stored conversation that differs, left as it was. */
export type ImportOutcome = 'inserted' | 'unchanged' | 'replaced' | 'conflict';

export type ImportOptions = {
  /** Replace a stored conversation that differs from its record instead of leaving it (default false). */
  replace?: boolean;
};

/**
 * Imports one record in one transaction (see the module header). An insert the database refuses
 * (a message or tool call id, or a conversation id of another user, already taken; an unknown
 * text search configuration) throws, and nothing of the conversation is written.
 */
export async function importConversation(
  em: EntityManager,
  record: ConversationRecord,
  options: ImportOptions = {},
): Promise<ImportOutcome> {
  const { id, userId } = record.conversation;
  return em.transactional(async (tx) => {
    if (!(await lockConversation(tx, userId, id))) {
      await insertRecord(tx, record);
      return 'inserted';
    }
    const stored = hashSink();
    await writeConversation(ormReader(tx), userId, id, LAYOUTS.jsonl, stored, { conversations: 0, messages: 0, toolCalls: 0 });
    // The record's own line, hashed piece by piece as export writes it (never built whole).
    const given = hashSink();
    const { jsonl } = LAYOUTS;
    await given.write(jsonl.head(record.conversation, 0));
    for (const [index, message] of record.messages.entries()) await given.write(jsonl.message(message, index));
    await given.write(jsonl.tail(record.conversation));
    if (stored.digest() === given.digest()) return 'unchanged';
    if (!options.replace) return 'conflict';
    await deleteConversation(tx, userId, id);
    await insertRecord(tx, record);
    return 'replaced';
  });
}

/** How many records of each outcome an import had. */
export type ImportCounts = Record<ImportOutcome, number>;

export type ImportFileOptions = ImportOptions & {
  /** Called after each record, with its line number (from 1). */
  onRecord?: (line: number, record: ConversationRecord, outcome: ImportOutcome) => void;
  /** Called after each record, with the bytes of the file read so far and its size. */
  onProgress?: (bytesRead: number, size: number) => void;
};

/**
 * Imports every record of the archive at `path` (gzip when its first bytes say so), in file order; blank lines are passed over. Stops at the first line that is not a
 * record this server reads (`ArchiveFormatError`, a newer format version included) or that the
 * database refuses (an error saying the line): the records before it stay imported, nothing of
 * it is written.
 */
export async function importFile(em: EntityManager, path: string, options: ImportFileOptions = {}): Promise<ImportCounts> {
  const counts: ImportCounts = { inserted: 0, unchanged: 0, replaced: 0, conflict: 0 };
  let line = 0;
  const archive = await openArchive(path);
  try {
    for await (const text of lines(archive.input)) {
      line += 1;
      if (text.trim() === '') continue;
      const record = parseRecord(text, line);
      let outcome: ImportOutcome;
      try {
        outcome = await importConversation(em, record, options);
      } catch (error) {
        throw new Error(`line ${line}: conversation ${record.conversation.id} not imported: ${(error as Error).message}`, { cause: error });
      }
      counts[outcome] += 1;
      options.onRecord?.(line, record, outcome);
      options.onProgress?.(archive.bytesRead(), archive.size);
    }
  } finally {
    archive.input.destroy();
  }
  return counts;
}

/** The first bytes of a gzip stream (RFC 1952). */
const GZIP_MAGIC = [0x1f, 0x8b];

/** An archive file opened for reading: its content (gunzipped), its size, and how much of it was read. */
export type ArchiveInput = { input: Readable; size: number; bytesRead(): number };

/** The archive at `path`, gunzipped when it starts with the gzip magic (whatever its name). */
export async function openArchive(path: string): Promise<ArchiveInput> {
  const file = await open(path, 'r').catch((error: Error) => {
    throw new Error(`cannot read ${path}: ${error.message}`, { cause: error });
  });
  try {
    const { size } = await file.stat();
    const head = Buffer.alloc(2);
    const { bytesRead } = await file.read(head, 0, 2, 0);
    const stream = file.createReadStream({ start: 0 });
    const gzipped = bytesRead === 2 && head[0] === GZIP_MAGIC[0] && head[1] === GZIP_MAGIC[1];
    let input: Readable = stream;
    if (gzipped) {
      const gunzip = createGunzip();
      stream.on('error', (error) => gunzip.destroy(error));
      input = stream.pipe(gunzip);
    }
    return { input, size, bytesRead: () => stream.bytesRead };
  } catch (error) {
    await file.close();
    throw error;
  }
}

// Private: the lines of `input`, one at a time (a line of any length).
function lines(input: Readable): AsyncIterable<string> {
  input.setEncoding('utf8');
  return createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
}

// Private: inserts the record's conversation, then its messages, then their tool calls.
async function insertRecord(em: EntityManager, record: ConversationRecord): Promise<void> {
  const { conversation } = record;
  await insertConversationColumns(em, conversation);
  await insertMessageColumns(
    em,
    conversation.userId,
    conversation.id,
    record.messages.map(({ toolCalls: _, ...message }) => message),
  );
  await insertToolCallColumns(
    em,
    conversation.userId,
    conversation.id,
    record.messages.flatMap((message) => message.toolCalls.map((call) => ({ ...call, messageId: message.id }))),
  );
}
