/**
 * The offline agent: answers todo requests typed in plain English without a language model.
 *
 * It is what runs when no model is configured: `parseIntent` turns the last user message into one
 * `Intent`, `findTask` finds the task it is about, and `OfflineAgent` carries the request out
 * through the same `ToolBox` a model would use, so every call is recorded like a model's. It never
 * claims to be a model; anything it does not understand gets a short help text. Its reply is given
 * to `onText` in a few pieces (`textPieces`), so that streaming works with no model at all.
 */
import { z } from 'zod';
import { type Intent, type ListStatus, parseIntent } from './offline-intent.js';
import { findTask, type NumberedTask, taskLine } from './offline-match.js';
import type { Agent, AgentInput, AgentReply, ToolBox, ToolOutcome } from './types.js';

const HELP =
  'I’m the offline assistant: no language model is configured, so I understand simple todo requests only. ' +
  'Try “add buy milk”, “what’s pending?”, “mark 2 as done” or “rename task 1 to buy oat milk”.';

// The tools' results, read defensively: a tool box may front another server that answers differently.
const listedTasks = z.object({
  tasks: z.array(z.object({ task_id: z.string(), title: z.string(), description: z.string().nullish(), completed: z.boolean() })),
});
const changedTask = z.object({ title: z.string() });

/**
 * An agent without a language model: it parses the last user message with `parseIntent` and
 * carries the request out with the todo tools (`add_task`, `list_tasks`, `complete_task`,
 * `delete_task`, `update_task`). A request about one task first lists all tasks to find it, and
 * changes nothing when no task or more than one task fits.
 */
export class OfflineAgent implements Agent {
  readonly name = 'offline';

  async run({ messages, tools, onText }: AgentInput): Promise<AgentReply> {
    const last = messages.findLast((message) => message.role === 'user');
    const intent = parseIntent(last?.content ?? '');
    const content = await this.act(intent, tools);
    if (onText) for (const piece of textPieces(content)) onText(piece);
    return { content, model: 'offline', usage: null };
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
    return [heading, ...shown.map(taskLine)].join('\n');
  }

  private async change(intent: Extract<Intent, { kind: 'complete' | 'delete' | 'update' }>, tools: ToolBox): Promise<string> {
    const all = await listAll(tools);
    if (typeof all === 'string') return all;
    const found = findTask(all, intent.target, intent.kind === 'complete');
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

/**
 * `text` cut at word boundaries into at most `count` (default 4) non-empty pieces of about as many
 * words each, that concatenate to exactly `text` (whitespace stays with the word before it). Fewer
 * pieces when there are fewer words; none for the empty text.
 */
export function textPieces(text: string, count = 4): string[] {
  // Each word with the whitespace after it; the text's leading whitespace is a word of its own.
  const words = text.split(/(?<=\s)(?=\S)/).filter((word) => word !== '');
  const size = Math.ceil(words.length / count);
  const pieces: string[] = [];
  for (let start = 0; start < words.length; start += size) pieces.push(words.slice(start, start + size).join(''));
  return pieces;
}

// Private: the full list, numbered as the user sees it, or the sentence that says why not.
async function listAll(tools: ToolBox): Promise<NumberedTask[] | string> {
  const outcome = await tools.call('list_tasks', { status: 'all' });
  if (outcome.isError) return `I couldn’t read your tasks: ${outcome.content}`;
  const parsed = listedTasks.safeParse(outcome.structured);
  if (!parsed.success) return 'I couldn’t read your tasks: the task list came back in a form I don’t understand.';
  return parsed.data.tasks.map((task, index) => ({ task, number: index + 1 }));
}

function changedTitle(outcome: ToolOutcome, fallback: string): string {
  const parsed = changedTask.safeParse(outcome.structured);
  return parsed.success ? parsed.data.title : fallback;
}
