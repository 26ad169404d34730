/**
 * The archive format, version 1 (`docs/export-format.md` describes it field by field): one JSON
 * object per line, one conversation each, with every column the database holds of it, its
 * messages in `seq` order and each message's tool calls. This module owns the record's shape:
 * its types, the parser of one line (which says the line number of what is wrong), and the
 * serializers that export writes with, piece by piece, so that a conversation of any size is
 * written without ever being held whole.
 *
 * The serializers are canonical: keys in a fixed order, the keys of JSON values (metadata, tool
 * arguments and results) sorted, timestamps with six fractional digits. The same conversation
 * gives the same bytes, which is how import tells an unchanged conversation from a changed one.
 */
import { z } from 'zod';
import type { ConversationColumns, MessageColumns, ToolCallColumns } from '../db/stores/archive.js';
import { isUuid } from '../entities/ids.js';

/** What the `format` field of every record says. */
export const FORMAT_NAME = 'stateless-chat.conversation';
/** The version this server writes, and the newest it reads. */
export const FORMAT_VERSION = 1;

export type { ConversationColumns, MessageColumns, ToolCallColumns };
export type MessageRecord = MessageColumns & { toolCalls: ToolCallColumns[] };
/** One line of an archive: a conversation, its messages in `seq` order, their tool calls. */
export type ConversationRecord = {
  format: typeof FORMAT_NAME;
  version: typeof FORMAT_VERSION;
  conversation: ConversationColumns;
  messages: MessageRecord[];
};

/** A line that is not a record this server reads: its number (from 1) and what is wrong, as the message says them. */
export class ArchiveFormatError extends Error {
  readonly code: 'MALFORMED_RECORD' | 'NEWER_FORMAT';
  readonly line: number;

  constructor(code: ArchiveFormatError['code'], line: number, problem: string, options?: { cause?: unknown }) {
    super(`line ${line}: ${problem}`, options);
    this.name = 'ArchiveFormatError';
    this.code = code;
    this.line = line;
  }
}

/**
 * The record of line `line` (numbered from 1), checked field by field and with its timestamps in
 * canonical form. Throws `ArchiveFormatError`: NEWER_FORMAT for a version above `FORMAT_VERSION`
 * (checked before anything else), MALFORMED_RECORD naming the first field at fault.
 */
export function parseRecord(text: string, line: number): ConversationRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ArchiveFormatError('MALFORMED_RECORD', line, `not JSON (${(error as Error).message})`, { cause: error });
  }
  if (isObject(value) && typeof value.version === 'number' && value.version > FORMAT_VERSION) {
    throw new ArchiveFormatError(
      'NEWER_FORMAT',
      line,
      `format version ${value.version} is newer than this server reads (${FORMAT_VERSION})`,
    );
  }
  const parsed = recordSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? `${issue.path.join('.')}: ` : '';
    throw new ArchiveFormatError('MALFORMED_RECORD', line, `${where}${issue?.message ?? 'not a conversation record'}`);
  }
  return parsed.data as ConversationRecord;
}

/** The opening of a record, up to its messages array open: `{"format":…,"version":1,"conversation":{…},"messages":[`. */
export function recordHead(c: ConversationColumns): string {
  const conversation = {
    id: c.id,
    userId: c.userId,
    title: c.title,
    status: c.status,
    metadata: canonicalJson(c.metadata),
    createdAt: c.createdAt,
    updatedAt: c.updatedAt,
    lastMessageAt: c.lastMessageAt,
    expiresAt: c.expiresAt,
    archivedAt: c.archivedAt,
    messageCount: c.messageCount,
    nextSeq: c.nextSeq,
    promptTokens: c.promptTokens,
    completionTokens: c.completionTokens,
    totalTokens: c.totalTokens,
  };
  return `{"format":${JSON.stringify(FORMAT_NAME)},"version":${FORMAT_VERSION},"conversation":${JSON.stringify(conversation)},"messages":[`;
}

/** One message of the messages array, with its tool calls (no separator). */
export function messageJson(m: MessageRecord): string {
  return JSON.stringify({
    id: m.id,
    seq: m.seq,
    role: m.role,
    content: m.content,
    status: m.status,
    clientMessageId: m.clientMessageId,
    model: m.model,
    promptTokens: m.promptTokens,
    completionTokens: m.completionTokens,
    totalTokens: m.totalTokens,
    createdAt: m.createdAt,
    searchConfig: m.searchConfig,
    toolCalls: m.toolCalls.map((t) => ({
      id: t.id,
      callId: t.callId,
      server: t.server,
      name: t.name,
      arguments: canonicalJson(t.arguments),
      result: canonicalJson(t.result),
      isError: t.isError,
      startedAt: t.startedAt,
      durationMs: t.durationMs,
    })),
  });
}

/** What closes a record after its last message (without the line's newline). */
export const RECORD_TAIL = ']}';

/** The whole record as one canonical line (without its newline): what export writes for it. */
export function recordJson(record: ConversationRecord): string {
  return `${recordHead(record.conversation)}${record.messages.map(messageJson).join(',')}${RECORD_TAIL}`;
}

/** `value` with the keys of every object in it sorted, so that equal JSON values print alike. */
export function canonicalJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonicalJson);
  if (!isObject(value)) return value;
  const sorted: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) sorted[key] = canonicalJson(value[key]);
  return sorted;
}

/** A timestamp as the archive writes it: ISO 8601 in UTC with six fractional digits (`2026-12-05T18:30:00.123456Z`). */
export function canonicalTimestamp(text: string): string {
  const match = TIMESTAMP.exec(text);
  if (!match) throw new Error(`not an ISO 8601 UTC timestamp: ${JSON.stringify(text)}`);
  return `${match[1]}.${(match[2] ?? '').padEnd(6, '0')}Z`;
}

// Private: the schema of a record. Objects are strict: a field this version does not know is an
// error, not silently dropped (it would not come back on the next export).
const TIMESTAMP = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?Z$/;
const INT4_MAX = 2 ** 31 - 1;
const timestamp = z
  .string()
  .refine(
    (text) => TIMESTAMP.test(text) && !Number.isNaN(Date.parse(text)),
    'must be an ISO 8601 UTC timestamp such as 2026-12-05T18:30:00.123456Z',
  )
  .transform(canonicalTimestamp);
const uuid = z.string().refine(isUuid, 'must be a UUID');
const int = z
  .number()
  .int()
  .min(-INT4_MAX - 1)
  .max(INT4_MAX);
const count = int.min(0);
const jsonValue = z.json();

const toolCallSchema = z.strictObject({
  id: uuid,
  callId: z.string(),
  server: z.string(),
  name: z.string(),
  arguments: jsonValue,
  result: jsonValue.nullable(),
  isError: z.boolean(),
  startedAt: timestamp,
  durationMs: int,
});

const messageSchema = z.strictObject({
  id: uuid,
  seq: int.min(1),
  role: z.enum(['user', 'assistant', 'system', 'tool']),
  content: z.string(),
  status: z.enum(['complete', 'in_progress', 'failed']),
  clientMessageId: z.string().nullable(),
  model: z.string().nullable(),
  promptTokens: int.nullable(),
  completionTokens: int.nullable(),
  totalTokens: int.nullable(),
  createdAt: timestamp,
  searchConfig: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/, 'must be a text search configuration name'),
  toolCalls: z.array(toolCallSchema),
});

const conversationSchema = z.strictObject({
  id: uuid,
  userId: z.string().min(1),
  title: z.string().nullable(),
  status: z.enum(['active', 'archived', 'expired']),
  metadata: z.record(z.string(), jsonValue).nullable(),
  createdAt: timestamp,
  updatedAt: timestamp,
  lastMessageAt: timestamp,
  expiresAt: timestamp.nullable(),
  archivedAt: timestamp.nullable(),
  messageCount: count,
  nextSeq: int.min(1),
  promptTokens: count,
  completionTokens: count,
  totalTokens: count,
});

const recordSchema = z
  .strictObject({
    format: z.literal(FORMAT_NAME),
    version: z.literal(FORMAT_VERSION),
    conversation: conversationSchema,
    messages: z.array(messageSchema),
  })
  .superRefine((record, context) => {
    // What the database's constraints would refuse, said with the field at fault.
    const ids = new Set<string>();
    let seq = 0;
    record.messages.forEach((message, index) => {
      if (message.seq <= seq)
        context.addIssue({ code: 'custom', path: ['messages', index, 'seq'], message: 'must be above the seq before it' });
      if (message.seq >= record.conversation.nextSeq)
        context.addIssue({ code: 'custom', path: ['messages', index, 'seq'], message: 'must be below conversation.nextSeq' });
      seq = message.seq;
      for (const [at, id] of [message.id, ...message.toolCalls.map((call) => call.id)].entries()) {
        if (ids.has(id))
          context.addIssue({
            code: 'custom',
            path: at === 0 ? ['messages', index, 'id'] : ['messages', index, 'toolCalls', at - 1, 'id'],
            message: `${id} appears twice`,
          });
        ids.add(id);
      }
    });
  });

// Private: a plain JSON object (not an array, not null).
function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
