/**
 * The offline agent's reading of a message: a todo request typed in plain English becomes one
 * `Intent`, through a table of sentence patterns, without a language model. Pure and
 * deterministic; what the intent leads to is `OfflineAgent`'s business.
 */

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
  T: `(?:"(?<tq>[^"]+)"|'(?<ts>[^']+)'|(?<t>.+?))`,
  NEW: '(?<new>.+)',
  REST: '(?<rest>.+)',
  LIST: String.raw`(?:(?:my|the)\s+)?(?:todo\s+|to-do\s+|to\s+do\s+|task\s+)?(?:list|tasks|todos|to-dos)`,
};

function rx(source: string): RegExp {
  return new RegExp(
    source.replace(/\{(\w+)\}/g, (_, name: string) => FRAGMENTS[name] ?? `{${name}}`),
    'i',
  );
}

const GREETING =
  /^(?:(?:hi|hello|hey|hiya|howdy|yo|greetings)(?:\s+there)?|good\s+(?:morning|afternoon|evening|day))(?:\s+(?:assistant|bot|friend))?$/i;

// The order matters: the first rule that accepts the sentence wins. Updates come before adds
// ("add a note to task 2: ...") and adds before everything else, so that a title may contain
// words like "list" or "done" ("add a task to list my expenses"). Listing comes before the
// "<something> is done" form so that "what's done" is a question, not a task called "what's".
const RULES: Rule[] = [
  // A bare noun ("tasks", "completed tasks") is a listing; first, so that no verb below reads it as a target.
  {
    pattern:
      /^(?:(?:all|my|the)\s+)*(?:(?:pending|open|remaining|completed|finished|done)\s+)?(?:tasks|todos|to-dos|todo\s+list|to-do\s+list|to\s+do\s+list|list)$/i,
    build: (_, sentence) => ({ kind: 'list', status: listStatus(sentence) }),
  },

  // Update.
  { pattern: rx(String.raw`^(?:rename|retitle)\s+{T}\s+(?:to|as|into)\s+{NEW}$`), build: (g) => update(g, { title: g.new }) },
  {
    pattern: rx(
      String.raw`^(?:change|update|edit|modify|set)\s+(?:the\s+)?(?:description|details|notes?)\s+(?:of|for|on)\s+{T}\s*(?:\s+to|:)\s*{NEW}$`,
    ),
    build: (g) => update(g, { description: g.new }),
  },
  {
    pattern: rx(String.raw`^(?:change|update|edit|modify|set)\s+{T}(?:'s)?\s+(?:description|details|notes?)\s*(?:\s+to|:)\s*{NEW}$`),
    build: (g) => update(g, { description: g.new }),
  },
  {
    pattern: rx(
      String.raw`^(?:add|set)\s+(?:a\s+|the\s+)?(?:description|details|note)\s+(?:to|for|on)\s+{T}\s*(?::|\s-|\s+saying|\s+that\s+says)\s*{NEW}$`,
    ),
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
  {
    pattern: rx(String.raw`^(?:new|another)\s+(?:task|todo|to-do|item|reminder|entry)\s*(?:[:-]\s*|(?:called|named|titled)\s+)?{REST}$`),
    build: (g) => add(g.rest),
  },
  { pattern: rx(String.raw`^(?:task|todo|to-do|to\s+do|reminder)\s*:\s*{REST}$`), build: (g) => add(g.rest) },
  {
    pattern: rx(
      String.raw`^(?:remind\s+me|remember|(?:do\s+not|don't|dont)\s+(?:let\s+me\s+)?forget)\s+(?:(?:to|about)\s+)?(?!what\b|which\b|of\s+my\b)` +
        '{REST}$',
    ),
    build: (g) => add(g.rest),
  },
  {
    // "I need to buy milk" is a new task; "I need to add milk" is the same request as "add milk".
    pattern: rx(
      String.raw`^(?:i|we)(?:'ve|\s+have)?\s+(?:need\s+to|have\s+to|got\s+to|must|should|gotta|ought\s+to)\s+(?:(?:add|create)\s+)?{REST}$`,
    ),
    build: (g) => add(g.rest),
  },

  // Delete.
  {
    pattern: rx(
      String.raw`^(?:delete|remove|erase|drop|cancel|scrap|scratch|trash|discard|get\s+rid\s+of|forget\s+about)\s+{T}(?:\s+(?:from|off(?:\s+of)?)\s+{LIST})?$`,
    ),
    build: (g) => withTarget('delete', g),
  },

  // Complete, led by a verb.
  {
    pattern: rx(String.raw`^(?:complete|finish|finished|completed|done)(?:\s+with)?\s*[:-]?\s+{T}(?:\s+(?:on|from)\s+{LIST})?$`),
    build: (g) => withTarget('complete', g),
  },
  {
    pattern: rx(String.raw`^(?:check|tick|cross|strike)\s+off\s+{T}(?:\s+(?:on|from)\s+{LIST})?$`),
    build: (g) => withTarget('complete', g),
  },
  {
    pattern: rx(String.raw`^(?:check|tick|cross|strike)\s+{T}\s+off(?:\s+(?:(?:on|from)\s+)?{LIST})?$`),
    build: (g) => withTarget('complete', g),
  },
  {
    pattern: rx(String.raw`^mark\s+{T}\s+(?:as\s+)?(?:done|complete|completed|finished|checked(?:\s+off)?)$`),
    build: (g) => withTarget('complete', g),
  },
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
  const withDescription =
    /^(?<title>.+?)\s*(?:[,;]\s*|\s+)(?:with\s+(?:the\s+|a\s+)?(?:description|details|notes?)|(?:description|details|notes?)\s*:)\s*[:-]?\s*(?<description>.+)$/i.exec(
      rest,
    );
  const rawTitle = withDescription?.groups?.title ?? rest;
  const title = cleanPhrase(
    rawTitle.replace(
      /\s+(?:to|on|onto|in|into)\s+(?:(?:my|the)\s+)?(?:todo\s+|to-do\s+|to\s+do\s+|task\s+)?(?:list|tasks|todos|to-dos)$/i,
      '',
    ),
  );
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
  if (ordinal) return { number: ordinal[2] ? Number(ordinal[2]) : ORDINALS.indexOf((ordinal[1] ?? '').toLowerCase()) + 1 };
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
