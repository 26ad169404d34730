/** The viewer, their tasks and the tools the agent is offered. */
import { Arg, Ctx, Int, Query, Resolver } from 'type-graphql';
import { listTasks } from '../../chat/queries.js';
import { authed, type Context } from '../context.js';
import { decodeCursor, encodeCursor, parsePage, toConnection } from '../pagination.js';
import { TaskConnection, Tool, Viewer } from '../types.js';
import { parseId } from './ids.js';

const taskCursor = (task: { id: string }) => encodeCursor('task', [task.id]);
const decodeTaskCursor = (cursor: string, argument: string) =>
  parseId(decodeCursor('task', ['s'], cursor, argument)[0] as string, argument);

@Resolver()
export class ViewerResolver {
  @Query(() => Viewer, { description: 'The user of the bearer token.' })
  viewer(@Ctx() ctx: Context): Viewer {
    return { id: authed(ctx).viewer.userId };
  }

  @Query(() => TaskConnection, { description: 'The viewer’s todo tasks, oldest first.' })
  async tasks(
    @Ctx() ctx: Context,
    @Arg('first', () => Int, { nullable: true }) first?: number,
    @Arg('after', () => String, { nullable: true }) after?: string,
    @Arg('completed', () => Boolean, { nullable: true }) completed?: boolean,
  ) {
    const { viewer } = authed(ctx);
    const page = parsePage({ first, after }, decodeTaskCursor);
    return toConnection(await listTasks(ctx.em, viewer.userId, page, completed), page, taskCursor);
  }

  @Query(() => [Tool], { description: 'Every tool the agent is offered in a turn of the viewer.' })
  async tools(@Ctx() ctx: Context): Promise<Tool[]> {
    const { viewer } = authed(ctx);
    const tools = await ctx.services.openTools(ctx.em, viewer.userId);
    try {
      return tools.list();
    } finally {
      await tools.close();
    }
  }
}
