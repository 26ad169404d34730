/** The tools of one turn: the built-in todo MCP server, bound to the turn's user, reached over MCP. */
import type { EntityManager } from '@mikro-orm/postgresql';
import { createTodoServer, TODO_SERVER_NAME } from '../mcp/todo-server.js';
import { connectInMemory, createToolBox, type ToolLimits } from './toolbox.js';
import type { ToolBox } from './types.js';

/** Opens a tool box for `userId`: the todo server over an in-memory MCP transport pair made for this turn. */
export async function openTurnTools(em: EntityManager, userId: string, limits: ToolLimits): Promise<ToolBox & { close(): Promise<void> }> {
  const todo = await connectInMemory(createTodoServer(em, userId));
  return createToolBox([{ name: TODO_SERVER_NAME, client: todo, prefixed: false, owned: true }], limits);
}
