/** `selects`: whether a query asks for a path below the field being resolved, through fragments. */
import {
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLResolveInfo,
  Kind,
  type OperationDefinitionNode,
  parse,
  type SelectionSetNode,
} from 'graphql';
import { describe, expect, it } from 'vitest';
import { selects } from '../src/graphql/selection.js';

// The `messages` field of the query's first conversation node, as a resolver of it would see it.
function infoOfMessages(query: string): GraphQLResolveInfo {
  const document = parse(query);
  const fragments: Record<string, FragmentDefinitionNode> = {};
  for (const definition of document.definitions)
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments[definition.name.value] = definition;
  const operation = document.definitions.find((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
  const found: FieldNode[] = [];
  const visit = (set: SelectionSetNode | undefined) => {
    for (const selection of set?.selections ?? []) {
      if (selection.kind === Kind.FIELD && selection.name.value === 'messages') found.push(selection);
      else if (selection.kind === Kind.FRAGMENT_SPREAD) visit(fragments[selection.name.value]?.selectionSet);
      else visit(selection.selectionSet);
    }
  };
  visit(operation?.selectionSet);
  return { fieldNodes: found.slice(0, 1), fragments } as unknown as GraphQLResolveInfo;
}

describe('selects', () => {
  it('finds a path written out, in an inline fragment, or in named fragments that spread each other', () => {
    const path = ['edges', 'node', 'toolCalls'];
    expect(selects(infoOfMessages('{ c { messages { edges { node { toolCalls { name } } } } } }'), path)).toBe(true);
    expect(selects(infoOfMessages('{ c { messages { edges { node { content } } } } }'), path)).toBe(false);
    expect(selects(infoOfMessages('{ c { messages { edges { ... on MessageEdge { node { toolCalls { name } } } } } } }'), path)).toBe(true);
    expect(
      selects(
        infoOfMessages(
          '{ c { messages { ...Page } } } fragment Page on MessageConnection { edges { node { ...M } } } fragment M on Message { id ...Calls } fragment Calls on Message { toolCalls { name } }',
        ),
        path,
      ),
    ).toBe(true);
    // Fragments that spread each other end, and find nothing that is not there.
    expect(
      selects(infoOfMessages('{ c { messages { ...A } } } fragment A on X { ...B } fragment B on X { ...A edges { cursor } }'), path),
    ).toBe(false);
  });
});
