/**
 * The tools of one turn: the built-in todo MCP server, bound to the turn's user, and the shared
 * external servers of `MCP_CONFIG`, all reached over MCP.
 *
 * The todo server is handed the task store of the request, so that the agent is handed a finished
 * `ToolBox` and knows nothing of the database.
 */
import type { ToolBox, ToolCallRecord } from '../agent/types.js';
import type { TaskStore } from '../db/stores/tasks.js';
import { createTodoServer, TODO_SERVER_NAME, type TodoOptions } from './todo-server.js';
import { connectInMemory, createToolBox, type ToolLimits, type ToolServer } from './toolbox.js';

/**
 * Opens a tool box for `userId`: the todo server over an in-memory MCP transport pair made for
 * this turn (closed with the box), then the `shared` servers (default none; `McpHub.servers()`),
 * which stay open. Todo tools keep their plain names; shared servers' tools are `server__tool`.
 * `todo` sets the todo server's task quota and logger (default: none).
 */
export async function openTurnTools(
  tasks: TaskStore,
  userId: string,
  limits: ToolLimits,
  shared: ToolServer[] = [],
  onCall?: (call: ToolCallRecord) => void,
  todoOptions: TodoOptions = {},
): Promise<ToolBox & { close(): Promise<void> }> {
  const todo = await connectInMemory(createTodoServer(tasks, userId, todoOptions));
  return createToolBox([{ name: TODO_SERVER_NAME, client: todo, prefixed: false, owned: true }, ...shared], limits, onCall);
}
