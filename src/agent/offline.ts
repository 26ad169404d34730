/**
 * The offline agent: answers todo requests typed in plain English without a language model.
 *
 * It is what runs when no model is configured: `parseIntent` turns
 * the last user message into one `Intent` with a table of patterns, and `OfflineAgent` carries
 * that intent out through the same `ToolBox` a model would use, so every call is recorded like a
 * model's. It never claims to be a model; anything it does not understand gets a short help text.
 */
import { z } from 'zod';
import type { Agent, AgentInput, AgentReply, ToolBox, ToolOutcome } from './types.js';

/** Which task a request is about: a position in the full list (1-based, oldest first), or words of its title. */
export type TaskTarget = { number: number } | { words: string };

/** Which tasks a listing shows. */
export type ListStatus = 'all' | 'pending' | 'completed';

/** What a user's message asks for. `help` is the answer to anything not understood. */
export type Intent =
  | { kind: 'add'; title: string; description?: string }
  | { kind: 'list'; status: ListStatus }
  | { kind: 'complete'; target: TaskTarget }
  | { kind: 'delete'; target: TaskTarget }
  | { kind: 'update'; target: TaskTarget; title?: string; description?: string }
  | { kind: 'help' }
  | { kind: 'greeting' };

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

/**
 * Reads a todo request written in English and returns what it asks for. Pure and deterministic:
 * the same text always gives the same intent. Case, surrounding politeness ("please", "can you")
 * and trailing punctuation are ignored; titles keep the case they were typed in, title words of
 * a target are lower-cased. Anything not understood is `{ kind: 'help' }`; a bare hello is
 * `{ kind: 'greeting' }`.
 */
export function parseIntent(text: string): Intent {
  const tidy = tidyText(text);
  if (GREETING.test(tidy)) return { kind: 'greeting' };
  const sentence = unwrapPoliteness(tidy);
  for (const rule of RULES) {
    const match = rule.pattern.exec(sentence);
    if (!match) continue;
    // A rule may look at what it matched and decline (e.g. "I'm done" is no task), letting later rules try.
    const intent = rule.build(match.groups ?? {}, sentence);
    if (intent) return intent;
  }
  return { kind: 'help' };
}

type Groups = Record<string, string | undefined>;
/** One accepted sentence form: `build` gets its named groups and the whole (tidied) sentence. */
type Rule = { pattern: RegExp; build: (groups: Groups, sentence: string) => Intent | null };

// Pattern fragments, spliced into the rules below so that each rule reads as the sentence it accepts.
// {T}: a task target, either quoted (so "rename 'go to gym' to ..." splits at the right "to") or
// the shortest run of words that lets the rest of the pattern match.
const FRAGMENTS: Record<string, string> = {
  T: String.raw`(?:"(?<tq>[^"]+)"|'(?<ts>[^']+)'|(?<t>.+?))`,
  NEW: String.raw`(?<new>.+)`,
  REST: String.raw`(?<rest>.+)`,
  LIST: String.raw`(?:(?:my|the)\s+)?(?:todo\s+|to-do\s+|to\s+do\s+|task\s+)?(?:list|tasks|todos|to-dos)`,
};

function rx(source: string): RegExp {
  return new RegExp(source.replace(/\{(\w+)\}/g, (_, name: string) => FRAGMENTS[name] ?? `{${name}}`), 'i');
}

const GREETING = /^(?:(?:hi|hello|hey|hiya|howdy|yo|greetings)(?:\s+there)?|good\s+(?:morning|afternoon|evening|day))(?:\s+(?:assistant|bot|friend))?$/i;

// The order matters: the first rule that accepts the sentence wins. Updates come before adds
// ("add a note to task 2: ...") and adds before everything else, so that a title may contain
// words like "list" or "done" ("add a task to list my expenses"). Listing comes before the
// "<something> is done" form so that "what's done" is a question, not a task called "what's".
const RULES: Rule[] = [
  // A bare noun ("tasks", "completed tasks") is a listing; first, so that no verb below reads it as a target.
  {
    pattern: /^(?:(?:all|my|the)\s+)*(?:(?:pending|open|remaining|completed|finished|done)\s+)?(?:tasks|todos|to-dos|todo\s+list|to-do\s+list|to\s+do\s+list|list)$/i,
    build: (_, sentence) => ({ kind: 'list', status: listStatus(sentence) }),
  },

  // Update.
  { pattern: rx(String.raw`^(?:rename|retitle)\s+{T}\s+(?:to|as|into)\s+{NEW}$`), build: (g) => update(g, { title: g.new }) },
  {
    pattern: rx(String.raw`^(?:change|update|edit|modify|set)\s+(?:the\s+)?(?:description|details|notes?)\s+(?:of|for|on)\s+{T}\s*(?:\s+to|:)\s*{NEW}$`),
    build: (g) => update(g, { description: g.new }),
  },
  {
    pattern: rx(String.raw`^(?:change|update|edit|modify|set)\s+{T}(?:'s)?\s+(?:description|details|notes?)\s*(?:\s+to|:)\s*{NEW}$`),
    build: (g) => update(g, { description: g.new }),
  },
  {
    pattern: rx(String.raw`^(?:add|set)\s+(?:a\s+|the\s+)?(?:description|details|note)\s+(?:to|for|on)\s+{T}\s*(?::|\s-|\s+saying|\s+that\s+says)\s*{NEW}$`),
    build: (g) => update(g, { description: g.new }),
  },
  {
    pattern: rx(String.raw`^(?:change|update|edit|modify|set)\s+(?:the\s+)?(?:title|name)\s+(?:of|for)\s+{T}\s+to\s+{NEW}$`),
    build: (g) => update(g, { title: g.new }),
  },
  {
    pattern: rx(String.raw`^(?:change|update|edit|modify|set)\s+{T}(?:'s)?\s+(?:title|name)\s+to\s+{NEW}$`),
    build: (g) => update(g, { title: g.new }),
  },
  { pattern: rx(String.raw`^(?:change|update|edit|modify)\s+{T}\s+(?:to|into)\s+{NEW}$`), build: (g) => update(g, { title: g.new }) },

  // Add.
  {
    pattern: rx(
      String.raw`^(?:add|create|put|insert|save|jot\s+down|write\s+down|note\s+down|schedule)\s+` +
        String.raw`(?:(?:to|on|onto)\s+{LIST}\s*[:,-]?\s*)?` + // "add to my list: buy milk"
        String.raw`(?:(?:(?:a|an|the|my|new|another|one\s+more)\s+)*(?:task|todo|to-do|item|reminder|entry)s?\b\s*` + // "a new task"
        String.raw`(?:(?:called|named|titled|that\s+says|saying|to|for|about)\s+|[:-]\s*)?|[:-]\s*)?` + // "called", "to", ":"
        '{REST}$',
    ),
    build: (g) => add(g.rest),
  },
  { pattern: rx(String.raw`^(?:new|another)\s+(?:task|todo|to-do|item|reminder|entry)\s*(?:[:-]\s*|(?:called|named|titled)\s+)?{REST}$`), build: (g) => add(g.rest) },
  { pattern: rx(String.raw`^(?:task|todo|to-do|to\s+do|reminder)\s*:\s*{REST}$`), build: (g) => add(g.rest) },
  {
    pattern: rx(
      String.raw`^(?:remind\s+me|remember|(?:do\s+not|don't|dont)\s+(?:let\s+me\s+)?forget)\s+(?:(?:to|about)\s+)?(?!what\b|which\b|of\s+my\b)` + '{REST}$',
    ),
    build: (g) => add(g.rest),
  },
  {
    // "I need to buy milk" is a new task; "I need to add milk" is the same request as "add milk".
    pattern: rx(String.raw`^(?:i|we)(?:'ve|\s+have)?\s+(?:need\s+to|have\s+to|got\s+to|must|should|gotta|ought\s+to)\s+(?:(?:add|create)\s+)?{REST}$`),
    build: (g) => add(g.rest),
  },

  // Delete.
  {
    pattern: rx(String.raw`^(?:delete|remove|erase|drop|cancel|scrap|scratch|trash|discard|get\s+rid\s+of|forget\s+about)\s+{T}(?:\s+(?:from|off(?:\s+of)?)\s+{LIST})?$`),
    build: (g) => withTarget('delete', g),
  },

  // Complete, led by a verb.
  {
    pattern: rx(String.raw`^(?:complete|finish|finished|completed|done)(?:\s+with)?\s*[:-]?\s+{T}(?:\s+(?:on|from)\s+{LIST})?$`),
    build: (g) => withTarget('complete', g),
  },
  { pattern: rx(String.raw`^(?:check|tick|cross|strike)\s+off\s+{T}(?:\s+(?:on|from)\s+{LIST})?$`), build: (g) => withTarget('complete', g) },
  { pattern: rx(String.raw`^(?:check|tick|cross|strike)\s+{T}\s+off(?:\s+(?:(?:on|from)\s+)?{LIST})?$`), build: (g) => withTarget('complete', g) },
  { pattern: rx(String.raw`^mark\s+{T}\s+(?:as\s+)?(?:done|complete|completed|finished|checked(?:\s+off)?)$`), build: (g) => withTarget('complete', g) },
  {
    pattern: rx(
      String.raw`^(?:(?:i|we)(?:'ve|\s+have|'m|\s+am|'re|\s+are)?|just|already|finally)\s+(?:(?:just|already|finally)\s+)?` +
        String.raw`(?:finished|completed|did|done(?:\s+with)?|through\s+with)\s+{T}$`,
    ),
    build: (g) => withTarget('complete', g),
  },
  // "#3": a task number on its own is the quickest way to tick a task off.
  { pattern: /^#\s*(?<t>\d+)$/, build: (g) => withTarget('complete', g) },

  // List.
  {
    pattern: rx(
      String.raw`^(?:list|show|display|view|see|check|get|give|tell|print|read|what|what's|whats|which|how\s+many|do\s+i\s+have|have\s+i|anything)\b.*` +
        String.raw`\b(?:tasks?|todos?|to-dos?|to\s+do|list|pending|done|complete|completed|finished|left|remaining|open|outstanding|incomplete|unfinished|everything|plate|agenda|should\s+i\s+do)\b`,
    ),
    build: (_, sentence) => ({ kind: 'list', status: listStatus(sentence) }),
  },

  // Complete, "<task> is done".
  {
    pattern: rx(String.raw`^{T}\s+(?:(?:is|are|was)\s+)?(?:now\s+|all\s+)?(?:done|complete|completed|finished)$`),
    build: (g) => (PRONOUN.test(g.t ?? '') ? null : withTarget('complete', g)),
  },
];

// Private: "I'm done", "that's done", "all done" say nothing about which task.
const PRONOUN = /^(?:i|i'm|im|i\s+am|we|we're|we\s+are|all|everything|it|it's|that|that's|this|this\s+is|what|what's|whats)$/i;

const PENDING_WORDS =
  /\b(?:pending|open|remaining|left|incomplete|unfinished|outstanding|undone|(?:not|haven't|havent|have\s+not|aren't|are\s+not)\s+(?:yet\s+)?(?:been\s+)?(?:done|complete|completed|finished)|(?:have|need|got)\s+to\s+do|should\s+i\s+do)\b/i;
const COMPLETED_WORDS = /\b(?:complete|completed|done|finished|accomplished|checked\s+off|did\s+i)\b/i;

function listStatus(sentence: string): ListStatus {
  // Pending first: "not done yet" mentions "done" too.
  if (PENDING_WORDS.test(sentence)) return 'pending';
  if (COMPLETED_WORDS.test(sentence)) return 'completed';
  return 'all';
}

function add(rest: string | undefined): Intent | null {
  if (rest === undefined) return null;
  const withDescription = /^(?<title>.+?)\s*(?:[,;]\s*|\s+)(?:with\s+(?:the\s+|a\s+)?(?:description|details|notes?)|(?:description|details|notes?)\s*:)\s*[:-]?\s*(?<description>.+)$/i.exec(
    rest,
  );
  const rawTitle = withDescription?.groups?.title ?? rest;
  const title = cleanPhrase(rawTitle.replace(/\s+(?:to|on|onto|in|into)\s+(?:(?:my|the)\s+)?(?:todo\s+|to-do\s+|to\s+do\s+|task\s+)?(?:list|tasks|todos|to-dos)$/i, ''));
  // "add a task" names no task: let it fall through to the help text.
  if (!title || /^(?:(?:a|an|the|new|another)\s+)*(?:task|todo|to-do|item|reminder|entry)s?$/i.test(title)) return null;
  const description = cleanPhrase(withDescription?.groups?.description ?? '');
  return description ? { kind: 'add', title, description } : { kind: 'add', title };
}

function update(groups: Groups, change: { title?: string; description?: string }): Intent | null {
  const target = parseTarget(targetText(groups));
  if (!target) return null;
  const intent: Extract<Intent, { kind: 'update' }> = { kind: 'update', target };
  if (change.title !== undefined) {
    const title = cleanPhrase(change.title);
    if (!title) return null;
    intent.title = title;
  }
  if (change.description !== undefined) {
    const description = cleanPhrase(change.description);
    if (!description) return null;
    intent.description = description;
  }
  return intent;
}

function withTarget(kind: 'complete' | 'delete', groups: Groups): Intent | null {
  const text = targetText(groups);
  // "mark milk as not done": there is no tool to reopen a task, and it is certainly not "complete".
  if (kind === 'complete' && /\bnot$/i.test(text)) return null;
  const target = parseTarget(text);
  return target ? { kind, target } : null;
}

function targetText(groups: Groups): string {
  return groups.tq ?? groups.ts ?? groups.t ?? '';
}

const ORDINALS = ['first', 'second', 'third', 'fourth', 'fifth', 'sixth', 'seventh', 'eighth', 'ninth', 'tenth'];
const ORDINAL = new RegExp(String.raw`^(?:the\s+)?(${ORDINALS.join('|')}|(\d+)(?:st|nd|rd|th))(?:\s+(?:task|item|todo|one))?$`, 'i');

/** Private: "task 3", "#3", "3", "the second one" are positions; anything else is title words. */
function parseTarget(raw: string): TaskTarget | null {
  const phrase = cleanPhrase(raw)
    .replace(/\s+(?:from|off|on|in)\s+(?:(?:my|the)\s+)?(?:todo\s+|to-do\s+|task\s+)?(?:list|tasks|todos)$/i, '')
    .trim();
  const numbered = /^(?:(?:the\s+)?(?:task|item|todo|number|no\.?)\s*)?(?:number\s*)?#?\s*(\d+)$/i.exec(phrase);
  if (numbered) return { number: Number(numbered[1]) };
  const ordinal = ORDINAL.exec(phrase);
  if (ordinal) return { number: ordinal[2] ? Number(ordinal[2]) : ORDINALS.indexOf(ordinal[1]!.toLowerCase()) + 1 };
  const words = phrase
    .toLowerCase()
    .replace(/^(?:(?:the|my|a|an|this|that)\s+)+/, '')
    .replace(/^(?:task|item|todo)\s+(?=\S)/, '')
    .replace(/(?<=\S)\s+(?:task|item|todo|one)$/, '')
    .trim();
  return words ? { words } : null;
}

/** Private: trims quotes, trailing punctuation and extra spaces off a title or phrase. */
function cleanPhrase(raw: string): string {
  let phrase = raw.replace(/\s+/g, ' ').trim();
  for (;;) {
    const next = phrase
      .replace(/[\s.!?,;:]+$/, '')
      .replace(/^["'`](.*)["'`]$/, '$1')
      .trim();
    if (next === phrase) return phrase;
    phrase = next;
  }
}

/** Private: one spacing, straight quotes, no trailing punctuation or "please"/"thanks". */
function tidyText(text: string): string {
  let sentence = text.replace(/[“”„]/g, '"').replace(/[‘’]/g, "'").replace(/\s+/g, ' ').trim();
  for (;;) {
    const next = sentence
      .replace(/[\s.!?;,]+$/, '')
      .replace(/[\s,]+(?:please|pls|plz|thanks|thank\s+you|thx|for\s+me)$/i, '')
      .trim();
    if (next === sentence) return sentence;
    sentence = next;
  }
}

const LEADING_POLITENESS = [
  /^(?:please|pls|plz|kindly|ok|okay|alright|so|now|also|and|then|(?:hey|hi|hello|yo)(?:\s+there)?)\b[,!.]?\s+(?=\S)/i,
  /^(?:(?:can|could|would|will)\s+you(?:\s+please)?|(?:i'd|i\s+would)\s+like\s+(?:you\s+)?to|i\s+want\s+(?:you\s+)?to|i\s+wanna|let's|lets|help\s+me)\s+(?=\S)/i,
];

/** Private: drops the polite openings a request may start with, repeatedly ("ok, can you please ..."). */
function unwrapPoliteness(sentence: string): string {
  for (;;) {
    const next = LEADING_POLITENESS.reduce((s, pattern) => s.replace(pattern, ''), sentence);
    if (next === sentence) return sentence;
    sentence = next;
  }
}

// ---------------------------------------------------------------------------------------------
// Acting
// ---------------------------------------------------------------------------------------------

const HELP =
  'I’m the offline assistant: no language model is configured, so I understand simple todo requests only. ' +
  'Try “add buy milk”, “what’s pending?”, “mark 2 as done” or “rename task 1 to buy oat milk”.';

// The tools' results, read defensively: a tool box may front another server that answers differently.
const listedTasks = z.object({
  tasks: z.array(z.object({ task_id: z.string(), title: z.string(), description: z.string().nullish(), completed: z.boolean() })),
});
const changedTask = z.object({ title: z.string() });

type ListedTask = z.infer<typeof listedTasks>['tasks'][number];
/** A task with the number the list shows it under (its 1-based position, oldest first). */
type Numbered = { task: ListedTask; number: number };

/**
 * An agent without a language model: it parses the last user message with `parseIntent` and
 * carries the request out with the todo tools (`add_task`, `list_tasks`, `complete_task`,
 * `delete_task`, `update_task`). A request about one task first lists all tasks to find it, and
 * changes nothing when no task or more than one task fits.
 */
export class OfflineAgent implements Agent {
  readonly name = 'offline';

  async run({ messages, tools }: AgentInput): Promise<AgentReply> {
    const last = messages.findLast((message) => message.role === 'user');
    const intent = parseIntent(last?.content ?? '');
    return { content: await this.act(intent, tools), model: 'offline', usage: null };
  }

  private async act(intent: Intent, tools: ToolBox): Promise<string> {
    switch (intent.kind) {
      case 'greeting':
        return `Hello! ${HELP}`;
      case 'help':
        return HELP;
      case 'add': {
        const args = intent.description === undefined ? { title: intent.title } : { title: intent.title, description: intent.description };
        const outcome = await tools.call('add_task', args);
        if (outcome.isError) return `I couldn’t add that task: ${outcome.content}`;
        return `Added “${changedTitle(outcome, intent.title)}” to your tasks.`;
      }
      case 'list':
        return this.list(intent.status, tools);
      case 'complete':
      case 'delete':
      case 'update':
        return this.change(intent, tools);
    }
  }

  private async list(status: ListStatus, tools: ToolBox): Promise<string> {
    // Always the full list: the numbers shown must be the positions that "complete 3" refers to,
    // which a filtered list would renumber.
    const all = await listAll(tools);
    if (typeof all === 'string') return all;
    const shown = all.filter(({ task }) => status === 'all' || task.completed === (status === 'completed'));
    if (shown.length === 0) {
      return { all: 'You have no tasks.', pending: 'No pending tasks.', completed: 'No completed tasks.' }[status];
    }
    const heading = { all: 'Your tasks:', pending: 'Pending tasks:', completed: 'Completed tasks:' }[status];
    return [heading, ...shown.map(line)].join('\n');
  }

  private async change(intent: Extract<Intent, { kind: 'complete' | 'delete' | 'update' }>, tools: ToolBox): Promise<string> {
    const all = await listAll(tools);
    if (typeof all === 'string') return all;
    const found = resolve(all, intent.target, intent.kind === 'complete');
    if (typeof found === 'string') return found;
    const { task } = found;

    if (intent.kind === 'complete') {
      // Completing is idempotent on the server, but saying "marked as done" twice would mislead.
      if (task.completed) return `“${task.title}” is already done.`;
      const outcome = await tools.call('complete_task', { task_id: task.task_id });
      if (outcome.isError) return `I couldn’t mark “${task.title}” as done: ${outcome.content}`;
      return `Marked “${changedTitle(outcome, task.title)}” as done.`;
    }
    if (intent.kind === 'delete') {
      const outcome = await tools.call('delete_task', { task_id: task.task_id });
      if (outcome.isError) return `I couldn’t delete “${task.title}”: ${outcome.content}`;
      return `Deleted “${changedTitle(outcome, task.title)}”.`;
    }
    const args: { task_id: string; title?: string; description?: string } = { task_id: task.task_id };
    if (intent.title !== undefined) args.title = intent.title;
    if (intent.description !== undefined) args.description = intent.description;
    const outcome = await tools.call('update_task', args);
    if (outcome.isError) return `I couldn’t update “${task.title}”: ${outcome.content}`;
    const newTitle = changedTitle(outcome, intent.title ?? task.title);
    if (intent.title === undefined) return `Updated the description of “${newTitle}”.`;
    return `Renamed “${task.title}” to “${newTitle}”${intent.description === undefined ? '' : ' and updated its description'}.`;
  }
}

// Private: the full list, numbered as the user sees it, or the sentence that says why not.
async function listAll(tools: ToolBox): Promise<Numbered[] | string> {
  const outcome = await tools.call('list_tasks', { status: 'all' });
  if (outcome.isError) return `I couldn’t read your tasks: ${outcome.content}`;
  const parsed = listedTasks.safeParse(outcome.structured);
  if (!parsed.success) return 'I couldn’t read your tasks: the task list came back in a form I don’t understand.';
  return parsed.data.tasks.map((task, index) => ({ task, number: index + 1 }));
}

const EXAMPLES_SHOWN = 5;

/** Private: the one task a target names, or the sentence that explains why there is not exactly one. */
function resolve(all: Numbered[], target: TaskTarget, preferPending: boolean): Numbered | string {
  if ('number' in target) {
    const found = all[target.number - 1];
    if (found && target.number >= 1) return found;
    if (all.length === 0) return 'You have no tasks yet.';
    return `There is no task ${target.number}: you have ${all.length} ${all.length === 1 ? 'task' : 'tasks'}.\n${all.slice(0, EXAMPLES_SHOWN).map(line).join('\n')}`;
  }
  let candidates = matching(all, target.words);
  if (preferPending) {
    const pending = candidates.filter(({ task }) => !task.completed);
    if (pending.length > 0) candidates = pending;
  }
  if (candidates.length === 1) return candidates[0]!;
  if (candidates.length === 0) {
    if (all.length === 0) return `No task matches “${target.words}”: you have no tasks.`;
    const more = all.length > EXAMPLES_SHOWN ? `\n…and ${all.length - EXAMPLES_SHOWN} more.` : '';
    return `No task matches “${target.words}”. Your tasks include:\n${all.slice(0, EXAMPLES_SHOWN).map(line).join('\n')}${more}`;
  }
  return `“${target.words}” matches more than one task:\n${candidates.map(line).join('\n')}\nWhich one do you mean? Give its number, for example “${candidates[0]!.number}”.`;
}

// Private: an exact title wins; otherwise every meaningful word must appear in the title.
function matching(all: Numbered[], words: string): Numbered[] {
  const phrase = tokens(words).join(' ');
  const exact = all.filter(({ task }) => tokens(task.title).join(' ') === phrase);
  if (exact.length > 0) return exact;
  const meaningful = tokens(words).filter((word) => !STOP_WORDS.has(word));
  const wanted = meaningful.length > 0 ? meaningful : tokens(words);
  if (wanted.length === 0) return [];
  return all.filter(({ task }) => {
    const title = task.title.toLowerCase();
    const titleWords = tokens(task.title);
    return wanted.every((word) => title.includes(word) || titleWords.some((titleWord) => sameWord(titleWord, word)));
  });
}

const STOP_WORDS = new Set(['the', 'a', 'an', 'my', 'to', 'of', 'for', 'on', 'off', 'from', 'with', 'and', 'task', 'item', 'todo', 'list']);

function tokens(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

// Private: "I finished buying milk" should find "buy milk"; a light suffix-stripper is enough here.
function sameWord(titleWord: string, word: string): boolean {
  const a = stem(titleWord);
  const b = stem(word);
  return a === b || (b.length >= 3 && a.startsWith(b));
}

function stem(word: string): string {
  let s = word;
  if (s.length > 5 && s.endsWith('ing')) s = s.slice(0, -3);
  else if (s.length > 4 && s.endsWith('ed')) s = s.slice(0, -2);
  else if (s.length > 3 && s.endsWith('s') && !s.endsWith('ss')) s = s.slice(0, -1);
  if (s.length > 3 && s.at(-1) === s.at(-2)) s = s.slice(0, -1); // "shopping" -> "shopp" -> "shop"
  return s;
}

function line({ task, number }: Numbered): string {
  const description = task.description ? ` — ${task.description}` : '';
  return `${number}. [${task.completed ? 'x' : ' '}] ${task.title}${description}`;
}

function changedTitle(outcome: ToolOutcome, fallback: string): string {
  const parsed = changedTask.safeParse(outcome.structured);
  return parsed.success ? parsed.data.title : fallback;
}
