/** The viewer, their tasks and the tools the agent is offered. */
import { Arg, Int, Query, Resolver } from 'type-graphql';
import { taskStore } from '../../db/stores/tasks.js';
import type { RequestScope } from '../context.js';
import { cursors, parsePage, toConnection } from '../pagination.js';
import { TaskConnection, Tool, Viewer } from '../types.js';

@Resolver()
export class ViewerResolver {
  constructor(private readonly scope: RequestScope) {}

  @Query(() => Viewer, { description: 'The user of the bearer token.' })
  viewer(): Viewer {
    return { id: this.scope.viewer.userId };
  }

  @Query(() => TaskConnection, { description: 'The viewer’s todo tasks, oldest first.' })
  async tasks(
    @Arg('first', () => Int, { nullable: true }) first?: number,
    @Arg('after', () => String, { nullable: true }) after?: string,
    @Arg('completed', () => Boolean, { nullable: true }) completed?: boolean,
  ) {
    const { viewer } = this.scope;
    const page = parsePage({ first, after }, cursors.task.decode);
    return toConnection(await taskStore(this.scope.em).page(viewer.userId, page, completed), page, cursors.task.encode);
  }

  @Query(() => [Tool], { description: 'Every tool the agent is offered in a turn of the viewer.' })
  async tools(): Promise<Tool[]> {
    const { chat, viewer } = this.scope;
    return chat.listTools(viewer);
  }
}
