/**
 * The figures every fault run prints, read from what the client saw and what PostgreSQL holds.
 *
 * Requests (every HTTP `sendMessage`, retries included):
 * - sent:         requests made;
 * - acknowledged: requests answered with a `sendMessage` payload (replays included);
 * - failed:       requests answered with a GraphQL error (CONVERSATION_BUSY included);
 * - unknown:      requests with no answer (connection refused or reset, timeout): the client
 *                 cannot tell whether the turn happened.
 * Messages (one per clientMessageId the scenario used, all its requests together):
 * - stored:       messages whose user message is in the database;
 * - lost:         acknowledged messages (at least one payload came for the key) whose user message
 *                 is missing or is not the one the payload named, or whose reply is not at the next
 *                 seq as a complete assistant message holding the very text the client was given,
 *                 or whose payloads disagree with each other;
 * - duplicated:   extra copies in the database: user messages beyond the first with one text
 *                 (every scenario's texts are unique per key, so this also counts a second
 *                 message, or a second conversation, for one clientMessageId), complete replies
 *                 beyond the first to one text, and tasks beyond the first with one title (a tool's
 *                 side effect done twice).
 */
import { appendFileSync } from 'node:fs';
import { inject } from 'vitest';
import { defined } from '../../test/support/defined.js';
import type { Outcome } from './client.js';
import type { Cluster } from './cluster.js';
import { replyTo } from './model.js';

/** One message of a scenario: its key, its text and every request made for it. */
export type Sent = { key: string; message: string; outcomes: Outcome[] };

export type Table = {
  sent: number;
  acknowledged: number;
  failed: number;
  unknown: number;
  stored: number;
  lost: number;
  duplicated: number;
};

export type StoredMessage = {
  id: string;
  user_id: string;
  conversation_id: string;
  seq: number;
  role: string;
  status: string;
  content: string;
  client_message_id: string | null;
};

export type Audit = {
  table: Table;
  /** Why each lost or duplicated message counts, one line each. */
  lostDetails: string[];
  duplicateDetails: string[];
  /** Every message of the users, by conversation, in seq order. */
  conversations: Map<string, StoredMessage[]>;
};

/** Audits the messages `sent` by `users` against the database (see the module header). */
export async function audit(cluster: Cluster, users: string[], sent: Sent[]): Promise<Audit> {
  const rows = await cluster.sql<StoredMessage>(
    `select id, user_id, conversation_id, seq, role, status, content, client_message_id
       from message where user_id = any($1) order by conversation_id, seq`,
    [users],
  );
  const conversations = Map.groupBy(rows, (row) => row.conversation_id);
  const at = (conversationId: string, seq: number) => conversations.get(conversationId)?.find((row) => row.seq === seq);
  const outcomes = sent.flatMap((message) => message.outcomes);

  const lostDetails: string[] = [];
  let stored = 0;
  for (const message of sent) {
    const mine = rows.filter((row) => row.role === 'user' && row.client_message_id === message.key);
    if (mine.length > 0) stored++;
    const payloads = message.outcomes.flatMap((outcome) => (outcome.kind === 'ack' ? [outcome.payload] : []));
    if (payloads.length === 0) continue;
    const first = defined(payloads[0], `the first payload of ${message.key}`);
    const why: string[] = [];
    const row = mine.find((candidate) => candidate.id === first.userMessage.id);
    if (!row) why.push(`its user message ${first.userMessage.id} (seq ${first.userMessage.seq}) is not stored`);
    else {
      const reply = at(row.conversation_id, row.seq + 1);
      if (!reply) why.push(`no reply at seq ${row.seq + 1}`);
      else if (reply.role !== 'assistant' || reply.status !== 'complete' || reply.content !== first.response) {
        why.push(
          `the reply at seq ${row.seq + 1} is ${reply.role}/${reply.status} ${JSON.stringify(reply.content.slice(0, 60))}, the client got ${JSON.stringify(first.response.slice(0, 60))}`,
        );
      }
    }
    const disagree = payloads.filter(
      (payload) =>
        payload.userMessage.id !== first.userMessage.id ||
        payload.assistantMessage.id !== first.assistantMessage.id ||
        payload.response !== first.response,
    );
    if (disagree.length > 0) why.push(`${disagree.length} of its ${payloads.length} payloads name another turn`);
    if (why.length > 0) lostDetails.push(`${message.key}: ${why.join('; ')}`);
  }

  const duplicateDetails: string[] = [];
  const extra = (groups: Map<string, unknown[]>, what: string) => {
    for (const [key, group] of groups) if (group.length > 1) duplicateDetails.push(`${what} ${key}: stored ${group.length} times`);
  };
  extra(
    Map.groupBy(
      rows.filter((row) => row.role === 'user'),
      (row) => `${row.user_id} ${JSON.stringify(row.content)}`,
    ),
    'user message',
  );
  extra(
    Map.groupBy(
      rows.filter((row) => row.role === 'assistant' && row.status === 'complete'),
      (row) => `${row.user_id} ${JSON.stringify(row.content)}`,
    ),
    'complete reply',
  );
  const tasks = await cluster.sql<{ user_id: string; title: string }>('select user_id, title from task where user_id = any($1)', [users]);
  extra(
    Map.groupBy(tasks, (task) => `${task.user_id} ${JSON.stringify(task.title)}`),
    'task',
  );
  const duplicated = duplicateDetails.reduce(
    (sum, line) => sum + Number(defined(/stored (\d+) times/.exec(line), `a count in "${line}"`)[1]) - 1,
    0,
  );

  return {
    table: {
      sent: outcomes.length,
      acknowledged: outcomes.filter((outcome) => outcome.kind === 'ack').length,
      failed: outcomes.filter((outcome) => outcome.kind === 'error').length,
      unknown: outcomes.filter((outcome) => outcome.kind === 'unknown').length,
      stored,
      lost: lostDetails.length,
      duplicated,
    },
    lostDetails,
    duplicateDetails,
    conversations,
  };
}

/**
 * Where `messages` (one conversation, seq order) breaks the order of a conversation: seq must
 * run 1..N without a gap, and every user message be followed directly by its reply, an assistant
 * message answering that very text. `openTail`: the last user message may still lack its reply.
 */
export function orderViolations(messages: StoredMessage[], openTail = false): string[] {
  const problems: string[] = [];
  messages.forEach((row, index) => {
    if (row.seq !== index + 1) problems.push(`seq ${row.seq} at position ${index + 1}`);
  });
  messages.forEach((row, index) => {
    if (row.role !== 'user') {
      if (messages[index - 1]?.role !== 'user') problems.push(`seq ${row.seq} (${row.role}) follows no user message`);
      return;
    }
    const reply = messages[index + 1];
    if (!reply) {
      if (!openTail || index !== messages.length - 1) problems.push(`seq ${row.seq} (user) has no reply`);
    } else if (reply.role !== 'assistant' || reply.seq !== row.seq + 1) {
      problems.push(`seq ${row.seq} (user) is followed by ${reply.role} at seq ${reply.seq}`);
    } else if (reply.status === 'complete' && reply.content !== replyTo(row.content)) {
      problems.push(`seq ${reply.seq} answers ${JSON.stringify(reply.content.slice(0, 50))}, not seq ${row.seq}`);
    }
  });
  return problems;
}

const COLUMNS = ['sent', 'acknowledged', 'failed', 'unknown', 'stored', 'lost', 'duplicated'] as const;

/** Prints the scenario's table and notes, and keeps them for the summary at the end of the run. */
export function printTable(title: string, table: Table, notes: string[] = []): void {
  const widths = COLUMNS.map((column) => Math.max(column.length, String(table[column]).length));
  const row = (cells: string[]) =>
    `| ${cells.map((cell, i) => cell.padStart(defined(widths[i], `the width of column ${i}`))).join(' | ')} |`;
  const text = [
    '',
    title,
    row([...COLUMNS]),
    `|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`,
    row(COLUMNS.map((column) => String(table[column]))),
    ...notes.map((note) => `  ${note}`),
    '',
  ].join('\n');
  process.stdout.write(`${text}\n`);
  appendFileSync(inject('faultSummaryFile'), `${text}\n`);
}

declare module 'vitest' {
  export interface ProvidedContext {
    faultSummaryFile: string;
  }
}
