/**
 * The offline agent's finding of the one task a request is about: by its number in the list, or
 * by words of its title (an exact title first, then every meaningful word, loosely stemmed). When
 * not exactly one task fits, the answer is the sentence that says so and shows the candidates.
 */
import type { TaskTarget } from './offline-intent.js';

/** A task as the todo server's `list_tasks` returns it. */
export type ListedTask = { task_id: string; title: string; description?: string | null; completed: boolean };

/** A task with the number the list shows it under (its 1-based position, oldest first). */
export type NumberedTask = { task: ListedTask; number: number };

const EXAMPLES_SHOWN = 5;

/**
 * The one task `target` names in `all`, or the sentence that explains why there is not exactly one.
 * With `preferPending` (when completing), pending tasks win over completed ones that fit the same
 * words: a task already done is rarely the one meant.
 */
export function findTask(all: NumberedTask[], target: TaskTarget, preferPending: boolean): NumberedTask | string {
  if ('number' in target) {
    const found = all[target.number - 1];
    if (found && target.number >= 1) return found;
    if (all.length === 0) return 'You have no tasks yet.';
    return `There is no task ${target.number}: you have ${all.length} ${all.length === 1 ? 'task' : 'tasks'}.\n${all.slice(0, EXAMPLES_SHOWN).map(taskLine).join('\n')}`;
  }
  let candidates = matching(all, target.words);
  if (preferPending) {
    const pending = candidates.filter(({ task }) => !task.completed);
    if (pending.length > 0) candidates = pending;
  }
  const [only, ...others] = candidates;
  if (only && others.length === 0) return only;
  if (!only) {
    if (all.length === 0) return `No task matches “${target.words}”: you have no tasks.`;
    const more = all.length > EXAMPLES_SHOWN ? `\n…and ${all.length - EXAMPLES_SHOWN} more.` : '';
    return `No task matches “${target.words}”. Your tasks include:\n${all.slice(0, EXAMPLES_SHOWN).map(taskLine).join('\n')}${more}`;
  }
  return `“${target.words}” matches more than one task:\n${candidates.map(taskLine).join('\n')}\nWhich one do you mean? Give its number, for example “${only.number}”.`;
}

// Private: an exact title wins; otherwise every meaningful word must appear in the title.
function matching(all: NumberedTask[], words: string): NumberedTask[] {
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

/** One line of a task list as the user reads it: `2. [x] Title — description`. */
export function taskLine({ task, number }: NumberedTask): string {
  const description = task.description ? ` — ${task.description}` : '';
  return `${number}. [${task.completed ? 'x' : ' '}] ${task.title}${description}`;
}
