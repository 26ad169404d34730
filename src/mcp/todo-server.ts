/**
 * The built-in todo MCP server: five tools over the `task` table of one user.
 *
 * No tool takes a user id: the acting user is bound outside the model's reach, when the server is
 * made for `/mcp` (from the bearer token), or by the turn's tool box in each call's request
 * metadata for the one server the process shares between its turns (`ActingUser`). A task of
 * another user is reported exactly like a task that does not exist. Every read and write goes through the task store (`db/stores/tasks.ts`), one statement
 * or transaction per call, so parallel calls are safe. A user has at most `maxTasks` tasks
 * (race-safe: the store's adds of one user take turns on a lock). A tool
 * that fails unexpectedly (the database, a bug) answers a generic tool error and logs the cause:
 * no SQL or driver text ever reaches the client or the model.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { TaskStore } from '../db/stores/tasks.js';
import { isUuid } from '../entities/ids.js';
import type { Task } from '../entities/index.js';
import type { Logger } from '../log.js';
import { isText } from '../text.js';

export const TODO_SERVER_NAME = 'todo';

const TITLE_MAX = 500;
const DESCRIPTION_MAX = 4_000;

// Tool arguments come from clients and models alike: text is checked like any client string.
const text = () => z.string().refine(isText, { message: 'must be well-formed Unicode without NUL characters' });
const taskId = text().describe('The task_id of the task, as add_task or list_tasks returned it.');
const title = text().trim().min(1).max(TITLE_MAX);
const description = text().max(DESCRIPTION_MAX);

const changeResult = {
  task_id: z.string(),
  status: z.enum(['created', 'completed', 'deleted', 'updated']),
  title: z.string(),
};
const taskView = z.object({
  task_id: z.string(),
  title: z.string(),
  description: z.string().nullable(),
  completed: z.boolean(),
  created_at: z.string(),
});

export type TodoOptions = {
  /** Tasks a user may have; `add_task` refuses past it. Default 0: no limit. */
  maxTasks?: number;
  /** Where unexpected tool failures are logged. Default: nowhere (they are still masked). */
  log?: Pick<Logger, 'error'>;
};

/**
 * Who a call acts for: one user for the whole server (`/mcp`, from the bearer token), or the user
 * named in each call's request metadata under `ACTING_USER_META` (the process's own server, shared
 * by every turn: the tool box sets it from the verified viewer; the model writes only `arguments`).
 */
export type ActingUser = { userId: string } | 'from-request-meta';

/** The `_meta` key under which the turn's tool box names the verified user of a call. */
export const ACTING_USER_META = 'stateless-chat/user';

/** Creates a todo MCP server acting for `actingUser`, storing through `tasks`. */
export function createTodoServer(tasks: TaskStore, actingUser: ActingUser, options: TodoOptions = {}): McpServer {
  const server = new McpServer({ name: TODO_SERVER_NAME, version: '1.0.0' });
  const { maxTasks = 0 } = options;
  const guarded = guard(options.log, actingUser);

  server.registerTool(
    'add_task',
    {
      description: 'Create a new task on the user’s todo list.',
      inputSchema: { title: title.describe('Short title of the task.'), description: description.optional() },
      outputSchema: changeResult,
    },
    guarded('add_task', async (args, userId) => {
      const task = await tasks.add(userId, args.title, args.description?.trim() || null, maxTasks);
      return task ? changed(task, 'created') : failure(`Task limit reached: ${maxTasks} tasks; delete some first.`);
    }),
  );

  server.registerTool(
    'list_tasks',
    {
      description: 'List the user’s tasks, oldest first: all of them (default), only pending, or only completed.',
      inputSchema: { status: z.enum(['all', 'pending', 'completed']).optional() },
      outputSchema: { tasks: z.array(taskView) },
    },
    guarded('list_tasks', async (args, userId) => {
      const status = args.status ?? 'all';
      const found = await tasks.list(userId, status === 'all' ? null : status === 'completed');
      const structured = { tasks: found.map(view) };
      const text =
        found.length === 0 ? 'No tasks.' : found.map((t) => `${t.completed ? '[x]' : '[ ]'} ${t.title} (task_id ${t.id})`).join('\n');
      return { content: [{ type: 'text', text }], structuredContent: structured };
    }),
  );

  server.registerTool(
    'complete_task',
    { description: 'Mark a task as completed.', inputSchema: { task_id: taskId }, outputSchema: changeResult },
    guarded('complete_task', async (args, userId) => {
      const task = isUuid(args.task_id) ? await tasks.update(userId, args.task_id, { completed: true }) : null;
      return task ? changed(task, 'completed') : notFound(args.task_id);
    }),
  );

  server.registerTool(
    'delete_task',
    { description: 'Delete a task.', inputSchema: { task_id: taskId }, outputSchema: changeResult },
    guarded('delete_task', async (args, userId) => {
      const task = isUuid(args.task_id) ? await tasks.remove(userId, args.task_id) : null;
      return task ? changed(task, 'deleted') : notFound(args.task_id);
    }),
  );

  server.registerTool(
    'update_task',
    {
      description: 'Change the title and/or the description of a task.',
      inputSchema: { task_id: taskId, title: title.optional(), description: description.optional() },
      outputSchema: changeResult,
    },
    guarded('update_task', async (args, userId) => {
      if (args.title === undefined && args.description === undefined) {
        return failure('Nothing to update: give a new title or a new description.');
      }
      const changes = {
        ...(args.title !== undefined ? { title: args.title } : {}),
        ...(args.description !== undefined ? { description: args.description.trim() || null } : {}),
      };
      // A malformed id is reported like an unknown one, before any SQL.
      const task = isUuid(args.task_id) ? await tasks.update(userId, args.task_id, changes) : null;
      return task ? changed(task, 'updated') : notFound(args.task_id);
    }),
  );

  return server;
}

function view(task: Task) {
  return {
    task_id: task.id,
    title: task.title,
    description: task.description,
    completed: task.completed,
    created_at: task.createdAt.toISOString(),
  };
}

function changed(task: Task, status: 'created' | 'completed' | 'deleted' | 'updated'): CallToolResult {
  const structured = { task_id: task.id, status, title: task.title };
  return { content: [{ type: 'text', text: JSON.stringify(structured) }], structuredContent: structured };
}

function notFound(id: string): CallToolResult {
  return failure(`Task ${id} not found.`);
}

/**
 * Private: wraps a tool's handler so that it runs for the acting user of the call, and so that an
 * unexpected failure becomes a generic tool error (`isError`), logged with its cause, instead of
 * the SDK's error result with the raw message (which, from the database, can be SQL and driver
 * text). A call that names no user (impossible through the tool box) touches nothing.
 */
function guard(log: TodoOptions['log'], actingUser: ActingUser) {
  return <A>(tool: string, handler: (args: A, userId: string) => Promise<CallToolResult>) =>
    async (args: A, extra: { _meta?: Record<string, unknown> }): Promise<CallToolResult> => {
      const named = extra._meta?.[ACTING_USER_META];
      const userId = actingUser === 'from-request-meta' ? (typeof named === 'string' && named !== '' ? named : null) : actingUser.userId;
      if (userId === null) return failure(`${tool} needs the acting user; this call named none.`);
      try {
        return await handler(args, userId);
      } catch (error) {
        log?.error({ err: error, tool, userId }, 'todo tool failed');
        return failure(`Internal error: ${tool} could not be completed. Try again later.`);
      }
    };
}

function failure(text: string): CallToolResult {
  return { content: [{ type: 'text', text }], isError: true };
}
