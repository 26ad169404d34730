/**
 * The tools of the turns: the built-in todo MCP server and the shared external servers of
 * `MCP_CONFIG`, all reached over MCP.
 *
 * Nothing is built per turn that can be built once: the todo server, its client, the in-memory
 * transport pair between them and the tool list (with the validators the client compiles for the
 * tools' output schemas) are made once per process. Each turn's tool box names its verified user
 * in the request metadata of every todo call (`ACTING_USER_META`), which the model cannot write:
 * the model supplies only a call's arguments. The agent is handed a finished `ToolBox` and knows
 * nothing of the database.
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { StartingCall, ToolBox, ToolCallRecord } from '../agent/types.js';
import type { TaskStore } from '../db/stores/tasks.js';
import { ACTING_USER_META, createTodoServer, TODO_SERVER_NAME, type TodoOptions } from './todo-server.js';
import { connectInMemory, createToolBox, type ToolLimits, type ToolServer } from './toolbox.js';

export type TurnToolsOptions = {
  /** Where the todo server keeps tasks; any unit of work (each call is its own statement or transaction). */
  tasks: TaskStore;
  /** The todo server's task quota and logger. */
  todo: TodoOptions;
  /** The shared external servers, asked for at every turn (`McpHub.servers`: the connected ones). */
  shared: () => ToolServer[];
  /** How long a call may take and how much of its result is kept. */
  limits: ToolLimits;
};

export type TurnTools = {
  /**
   * A tool box for one turn of `userId`: the todo tools under their plain names, then the shared
   * servers' tools as `server__tool`. `onStart` hears of each call as it starts, `onCall` as it completes.
   */
  open(userId: string, onCall?: (call: ToolCallRecord) => void, onStart?: (call: StartingCall) => void): Promise<ToolBox>;
  /** Closes the todo server's client and server (the shared servers belong to the hub). */
  close(): Promise<void>;
};

/** Connects the todo server once and returns what opens each turn's tool box. */
export async function connectTurnTools(options: TurnToolsOptions): Promise<TurnTools> {
  const todo: Client = await connectInMemory(createTodoServer(options.tasks, 'from-request-meta', options.todo));
  const { tools } = await todo.listTools();
  return {
    open(userId, onCall, onStart) {
      const own: ToolServer = { name: TODO_SERVER_NAME, client: todo, prefixed: false, tools, meta: { [ACTING_USER_META]: userId } };
      return createToolBox([own, ...options.shared()], options.limits, onCall, onStart);
    },
    close: () => todo.close(),
  };
}
