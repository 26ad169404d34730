/**
 * Restore (`stateless-chat restore`): purged conversations brought back from the files of their
 * archive run, exactly as they were archived. First every file needed is checked, before anything
 * changes: present, its SHA-256 equal to the one each conversation's `archive_location` names and
 * to its manifest's entry (size too). A file missing or different stops the restore with nothing
 * changed. Then each conversation, in ONE transaction: its row locked while still purged at that
 * location, its messages and tool calls inserted as its record has them (the import's writers),
 * `purged_at` and `archive_location` cleared. Its messages are readable only once all are back.
 * The status stays ARCHIVED (`unarchiveConversation` reopens it).
 *
 * Each file is read three times: its bytes hashed, its lines parsed (a record this server does
 * not read, a newer format version included, or a conversation not there stops the restore
 * before any change), then its records read again to restore them, one file's at a time in memory.
 */
import { createInterface } from 'node:readline';
import type { EntityManager } from '@mikro-orm/postgresql';
import { insertMessageColumns, insertToolCallColumns } from '../db/stores/archive.js';
import { clearPurged, lockPurged, type PurgedConversation, type PurgedFilter, purgedConversations } from '../db/stores/purge.js';
import type { ArchiveLocation } from '../entities/index.js';
import { fileDigest, inside, readManifest } from './files.js';
import { type ConversationRecord, parseRecord } from './format.js';
import { openArchive } from './import.js';

/** What a restore did: `skipped` were not purged (or no longer at the location read). */
export type RestoreSummary = { conversations: number; messages: number; toolCalls: number; files: number; skipped: string[] };

export type RestoreOptions = {
  /** Called after each conversation restored, with the totals so far and the number to restore. */
  onProgress?: (summary: RestoreSummary, total: number) => void;
};

/**
 * Restores the purged conversations passing `filter` from the archive directory `from` (see the
 * module header). `requested`: conversation ids asked for by name, reported in `skipped` when not
 * purged. Throws, changing nothing, when a file is missing or differs from its checksums; throws
 * at a conversation the database refuses (those before it stay restored).
 */
export async function restoreConversations(
  em: EntityManager,
  from: string,
  filter: PurgedFilter,
  requested: readonly string[] = [],
  options: RestoreOptions = {},
): Promise<RestoreSummary> {
  const purged = await purgedConversations(em, filter);
  const found = new Set(purged.map((conversation) => conversation.id));
  const summary: RestoreSummary = {
    conversations: 0,
    messages: 0,
    toolCalls: 0,
    files: 0,
    skipped: requested.filter((id) => !found.has(id)),
  };
  const byFile = Map.groupBy(purged, (conversation) => conversation.location.file);
  // Every file checked, and read through, before anything changes.
  for (const [file, conversations] of byFile) {
    await checkFile(from, file, conversations);
    const ids = new Set(conversations.map((conversation) => conversation.id));
    const held = await readRecords(inside(from, file), ids, false);
    const absent = [...ids].find((id) => !held.has(id));
    if (absent) throw new Error(`${inside(from, file)} holds no record of conversation ${absent}`);
  }
  for (const [file, conversations] of byFile) {
    const records = await readRecords(inside(from, file), new Set(conversations.map((conversation) => conversation.id)));
    for (const conversation of conversations) {
      const record = records.get(conversation.id);
      if (!record) throw new Error(`${inside(from, file)} holds no record of conversation ${conversation.id}`);
      if (await restoreOne(em, conversation, record)) {
        summary.conversations += 1;
        summary.messages += record.messages.length;
        summary.toolCalls += record.messages.reduce((sum, message) => sum + message.toolCalls.length, 0);
      } else summary.skipped.push(conversation.id);
      options.onProgress?.(summary, purged.length);
    }
    summary.files += 1;
  }
  return summary;
}

// Private: throws unless the file `file` is under `from`, whole, with the SHA-256 its conversations and its manifest name.
async function checkFile(from: string, file: string, conversations: PurgedConversation[]): Promise<void> {
  const where = inside(from, file);
  const digest = await fileDigest(where);
  const locations = new Map<string, ArchiveLocation>(conversations.map((c) => [`${c.location.sha256} ${c.location.manifest}`, c.location]));
  for (const location of locations.values()) {
    if (digest.sha256 !== location.sha256) {
      throw new Error(`checksum mismatch: ${where} has SHA-256 ${digest.sha256}, its conversations were archived with ${location.sha256}`);
    }
    const manifest = await readManifest(inside(from, location.manifest));
    const entry = manifest.files.find((listed) => listed.path === file);
    if (!entry) throw new Error(`the manifest ${inside(from, location.manifest)} does not list ${file}`);
    if (entry.sha256 !== digest.sha256 || entry.bytes !== digest.bytes) {
      throw new Error(
        `checksum mismatch: ${where} has ${digest.bytes} bytes, SHA-256 ${digest.sha256}; ` +
          `the manifest ${inside(from, location.manifest)} lists ${entry.bytes} bytes, ${entry.sha256}`,
      );
    }
  }
}

// Private: the records of the conversations `ids` in the archive at `file`, every line parsed;
// with `keep` false, only which of them are there (null for each: nothing held in memory).
async function readRecords(file: string, ids: ReadonlySet<string>, keep = true): Promise<Map<string, ConversationRecord | null>> {
  const records = new Map<string, ConversationRecord | null>();
  const archive = await openArchive(file);
  try {
    archive.input.setEncoding('utf8');
    let line = 0;
    for await (const text of createInterface({ input: archive.input, crlfDelay: Number.POSITIVE_INFINITY })) {
      line += 1;
      if (text.trim() === '') continue;
      let record: ConversationRecord;
      try {
        record = parseRecord(text, line);
      } catch (error) {
        throw new Error(`${file}: ${(error as Error).message}`, { cause: error });
      }
      if (ids.has(record.conversation.id)) records.set(record.conversation.id, keep ? record : null);
    }
  } finally {
    archive.input.destroy();
  }
  return records;
}

// Private: one conversation back, in one transaction; false when it is no longer purged at that location.
async function restoreOne(em: EntityManager, conversation: PurgedConversation, record: ConversationRecord): Promise<boolean> {
  const { userId, id, location } = conversation;
  if (record.conversation.userId !== userId || record.conversation.nextSeq !== conversation.nextSeq) {
    throw new Error(`the record of conversation ${id} in ${location.file} is not the one purged (another user or other counters)`);
  }
  return em.transactional(async (tx) => {
    if (!(await lockPurged(tx, userId, id, location))) return false;
    await insertMessageColumns(
      tx,
      userId,
      id,
      record.messages.map(({ toolCalls: _, ...message }) => message),
    );
    await insertToolCallColumns(
      tx,
      userId,
      id,
      record.messages.flatMap((message) => message.toolCalls.map((call) => ({ ...call, messageId: message.id }))),
    );
    await clearPurged(tx, userId, id);
    return true;
  });
}
