/**
 * How exported conversations are laid out in each output format, piece by piece (the start of the
 * output, a conversation's head, each of its messages, its tail, the end), so that export streams
 * any number of conversations of any size without holding one whole:
 *
 * - `jsonl`: one record per line (`format.ts`), the archive format that import reads;
 * - `json`: a JSON array of the same records;
 * - `markdown`: for people, one readable transcript per conversation, each tool call a collapsed
 *   `<details>` block with its arguments and result.
 */
import type { ConversationColumns, MessageRecord } from './format.js';
import { canonicalJson, messageJson, RECORD_TAIL, recordHead } from './format.js';

export type ExportFormat = 'jsonl' | 'json' | 'markdown';
export const EXPORT_FORMATS: readonly ExportFormat[] = ['jsonl', 'json', 'markdown'];

/** The pieces of one output format; `index` counts from 0 (the conversation in the output, the message in its conversation). */
export type Layout = {
  start: string;
  head(conversation: ConversationColumns, index: number): string;
  message(message: MessageRecord, index: number): string;
  tail(conversation: ConversationColumns): string;
  end(conversations: number): string;
};

const jsonl: Layout = {
  start: '',
  head: (conversation) => recordHead(conversation),
  message: (message, index) => (index === 0 ? '' : ',') + messageJson(message),
  tail: () => `${RECORD_TAIL}\n`,
  end: () => '',
};

const json: Layout = {
  start: '[',
  head: (conversation, index) => `${index === 0 ? '\n' : ',\n'}${recordHead(conversation)}`,
  message: jsonl.message,
  tail: () => RECORD_TAIL,
  end: (conversations) => (conversations === 0 ? ']\n' : '\n]\n'),
};

const markdown: Layout = {
  start: '',
  head: (c, index) =>
    [
      ...(index === 0 ? [] : ['---', '']),
      `# ${oneLine(c.title ?? 'Untitled conversation')}`,
      '',
      `- id: \`${c.id}\``,
      `- user: \`${oneLine(c.userId)}\``,
      `- status: ${c.status}${c.archivedAt ? ` (archived ${c.archivedAt})` : ''}${c.expiresAt ? ` (expires ${c.expiresAt})` : ''}`,
      `- created ${c.createdAt}, updated ${c.updatedAt}, last message ${c.lastMessageAt}`,
      `- ${c.messageCount} messages; tokens: ${c.promptTokens} prompt, ${c.completionTokens} completion, ${c.totalTokens} total`,
      ...(c.metadata ? [`- metadata: \`${JSON.stringify(canonicalJson(c.metadata))}\``] : []),
      '',
      '',
    ].join('\n'),
  message: (m) => {
    const about = [
      m.createdAt,
      ...(m.model ? [m.model] : []),
      ...(m.totalTokens !== null ? [`${m.totalTokens} tokens`] : []),
      ...(m.status === 'complete' ? [] : [m.status.replace('_', ' ')]),
    ];
    const calls = m.toolCalls.map((call) =>
      [
        `<details><summary>🔧 ${escapeHtml(`${call.server}.${call.name}`)}${call.isError ? ' (error)' : ''}, ${call.durationMs} ms</summary>`,
        '',
        'Arguments:',
        '',
        fenced(JSON.stringify(canonicalJson(call.arguments), null, 2)),
        '',
        'Result:',
        '',
        fenced(JSON.stringify(canonicalJson(call.result), null, 2)),
        '',
        '</details>',
        '',
      ].join('\n'),
    );
    return [`## ${m.seq}. ${m.role} · ${about.join(' · ')}`, '', m.content, '', ...calls, ''].join('\n');
  },
  tail: () => '',
  end: () => '',
};

/** The layout of each export format. */
export const LAYOUTS: Readonly<Record<ExportFormat, Layout>> = { jsonl, json, markdown };

// Private: a heading or list item's text on one line.
function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

// Private: text shown inside an HTML element of the transcript.
function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

// Private: `text` in a fenced JSON block whose fence is longer than any run of backticks in it.
function fenced(text: string): string {
  const longest = Math.max(2, ...[...text.matchAll(/`+/g)].map((run) => run[0].length));
  const fence = '`'.repeat(longest + 1);
  return `${fence}json\n${text}\n${fence}`;
}
