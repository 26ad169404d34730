/** What a query selects below a field, for resolvers that read more at once when it is asked for. */
import type { GraphQLResolveInfo, SelectionSetNode } from 'graphql';

/**
 * True when the query selects `path` (field names, one level each) below the field being
 * resolved, through fragments and inline fragments too. Directives are not weighed: a field under
 * `@skip` or `@include` counts as selected, so the answer errs on the side of reading it.
 */
export function selects(info: GraphQLResolveInfo, path: readonly string[]): boolean {
  return info.fieldNodes.some((node) => node.selectionSet !== undefined && below(node.selectionSet, path, info, new Set()));
}

// Private: `path` below one selection set; `seen` stops fragments that spread each other.
function below(set: SelectionSetNode, path: readonly string[], info: GraphQLResolveInfo, seen: Set<string>): boolean {
  const [name, ...rest] = path;
  if (name === undefined) return true;
  return set.selections.some((selection) => {
    if (selection.kind === 'Field') {
      if (selection.name.value !== name) return false;
      return rest.length === 0 || (selection.selectionSet !== undefined && below(selection.selectionSet, rest, info, seen));
    }
    if (selection.kind === 'InlineFragment') return below(selection.selectionSet, path, info, seen);
    const fragmentName = selection.name.value;
    const fragment = info.fragments[fragmentName];
    if (fragment === undefined || seen.has(fragmentName)) return false;
    return below(fragment.selectionSet, path, info, new Set([...seen, fragmentName]));
  });
}
