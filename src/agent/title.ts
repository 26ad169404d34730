/**
 * Titles by the model: the request that asks for a conversation's title, and the cleaning of what
 * comes back. A model's answer is text from outside: it is cut to one short line, its quotes and
 * markdown dropped, and refused (null) when nothing readable is left.
 */
import { isText } from '../text.js';
import type { AgentMessage } from './types.js';

/** Longest model title kept, in UTF-16 units (a first message's title is as long). */
export const MODEL_TITLE_MAX_CHARS = 80;
/** How much of the first message and of its reply the model is shown. */
const EXCERPT_CHARS = 2_000;

const INSTRUCTIONS = [
  'You write the title of a chat conversation, as a list of conversations shows it.',
  'Answer with the title only: at most six words, in the language of the user’s message, no quotes, no final period.',
].join(' ');

/** The messages that ask the model for the title of a conversation that began with `message`, answered by `reply`. */
export function titleRequest(message: string, reply: string): AgentMessage[] {
  return [
    { role: 'system', content: INSTRUCTIONS },
    {
      role: 'user',
      content: `The user wrote:\n${message.slice(0, EXCERPT_CHARS)}\n\nThe assistant answered:\n${reply.slice(0, EXCERPT_CHARS)}\n\nTitle:`,
    },
  ];
}

/**
 * The title in a model's answer: its first non-blank line without a `Title:` label, markdown
 * marks, control characters, surrounding quotes or a final period, whitespace collapsed, cut at a word within
 * `MODEL_TITLE_MAX_CHARS`; null when nothing is left or it is not plain text.
 */
export function cleanTitle(answer: string): string | null {
  const line = answer.split(/\r?\n/).find((candidate) => candidate.trim() !== '') ?? '';
  let title = line
    .replace(/^\s*(?:#+\s*|[*_`>-]+\s*)*/, '')
    .replace(/^title\s*:\s*/i, '')
    .replace(/[*_`]+/g, '')
    .replace(/\p{Cc}/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  for (let before = ''; before !== title; ) {
    before = title;
    title = title
      .replace(/^["'“”‘’«»]+|["'“”‘’«»]+$/g, '')
      .replace(/\.$/, '')
      .trim();
  }
  if (title.length > MODEL_TITLE_MAX_CHARS) {
    const cut = title.slice(0, MODEL_TITLE_MAX_CHARS + 1);
    const space = cut.lastIndexOf(' ');
    title = (space > MODEL_TITLE_MAX_CHARS / 2 ? cut.slice(0, space) : cut.slice(0, MODEL_TITLE_MAX_CHARS)).replace(/[\ud800-\udbff]$/, '');
  }
  return title === '' || !isText(title) ? null : title;
}
