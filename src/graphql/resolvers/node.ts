/**
 * Relay's Global Object Identification: `node(id:)` and `nodes(ids:)`, any of the viewer's
 * conversations, messages, tool calls and tasks by id alone, through the request's `node` loader
 * (one statement finds each id's type, one more per type reads the rows: see `loaders.ts`).
 */
import { Arg, ID, Query, Resolver } from 'type-graphql';
import { badInput } from '../../errors.js';
import type { RequestScope } from '../context.js';
import type { NodeValue } from '../loaders.js';
import { Node } from '../types.js';
import { parseId } from './ids.js';

/** The most ids one `nodes(ids:)` takes: as many as a page holds. */
export const NODES_MAX = 100;

@Resolver()
export class NodeResolver {
  constructor(private readonly scope: RequestScope) {}

  @Query(() => Node, {
    nullable: true,
    description:
      'The viewer’s object with this id, whatever its type; null for an unknown id or another user’s. A malformed id is BAD_USER_INPUT.',
  })
  async node(@Arg('id', () => ID) id: string): Promise<NodeValue | null> {
    return this.scope.loaders.node.load(parseId(id, 'id'));
  }

  @Query(() => [Node], {
    nullable: 'items',
    description: `The viewer’s objects with these ids, in their order: null for an unknown id or another user’s. At most ${NODES_MAX} ids; a malformed one is BAD_USER_INPUT.`,
  })
  async nodes(@Arg('ids', () => [ID]) ids: string[]): Promise<(NodeValue | null)[]> {
    if (ids.length > NODES_MAX) throw badInput(`ids may hold at most ${NODES_MAX} ids, got ${ids.length}`, 'ids');
    const parsed = ids.map((id, i) => parseId(id, `ids[${i}]`));
    return Promise.all(parsed.map((id) => this.scope.loaders.node.load(id)));
  }
}
