/**
 * Limits every GraphQL request keeps, checked before any resolver runs and, for the shape of the
 * document, before graphql-js's own validation (whose field-merge check is quadratic in repeated
 * fields: 20,000 `id`s once blocked the process for half a minute).
 *
 * In the order a request meets them:
 * 1. tokens: the parser stops at `maxTokens` (GRAPHQL_PARSE_FAILED, here and in Apollo);
 * 2. shape, at the HTTP edge before Apollo (`createShapeCheck`; Apollo's hooks cannot refuse a
 *    request before its validation): fields once fragments are written out (fragment bombs),
 *    depth, aliases and directives (GraphQL Armor's rules), a response name repeated in one
 *    selection set, at most one `sendMessage`, literal strings that are text;
 * 3. per request, in Apollo before execution (`queryLimits`): operation types the schema has,
 *    variables that are text and not absurdly nested, and the cost of the operation with these
 *    variables (graphql-query-complexity): a connection's `first`/`last` multiplies the cost of
 *    what is under it.
 *
 * A refusal is a 400 with `extensions.code` GRAPHQL_VALIDATION_FAILED (BAD_USER_INPUT for text)
 * and `extensions.limit` naming the limit.
 */
import type { ApolloServerPlugin } from '@apollo/server';
import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives';
import {
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  GraphQLError,
  type GraphQLSchema,
  getNamedType,
  getNullableType,
  isLeafType,
  isListType,
  Kind,
  type OperationDefinitionNode,
  parse,
  type SelectionSetNode,
  type TypeNode,
  type ValidationContext,
  validate,
  visit,
} from 'graphql';
import { type ComplexityEstimator, getComplexity } from 'graphql-query-complexity';
import type { Config } from '../config.js';
import { jsonProblem, textProblem } from '../text.js';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from './pagination.js';

export type QueryLimits = Config['graphql'];

export type LimitName =
  | 'tokens'
  | 'depth'
  | 'aliases'
  | 'directives'
  | 'repeatedFields'
  | 'fields'
  | 'sendMessage'
  | 'cost'
  | 'operationType';

/** How often one response name may appear in one selection set (inline fragments included). */
const REPEATED_FIELD_MAX = 5;
/** Fields an operation may select once its fragments are written out in place. */
const EXPANDED_FIELDS_MAX = 10_000;
/** What a list without paging arguments is assumed to hold, for the cost. */
const LIST_COST_SIZE = 10;
/** Variables nested deeper than this are refused outright (metadata has its own, lower limit). */
const VARIABLE_DEPTH_MAX = 32;
/** Mutation fields a request may hold at most once: each runs a whole turn. */
const ONCE_PER_REQUEST = ['sendMessage'];

/**
 * The check of a document's shape, for the HTTP edge to run before Apollo parses and validates:
 * returns the error of the first limit `source` breaks, or null (also for a syntax error, which
 * Apollo reports in its own words). Sources that passed are remembered, so a client's usual
 * operations are parsed here once.
 */
export function createShapeCheck(schema: GraphQLSchema, limits: QueryLimits): (source: string) => GraphQLError | null {
  const rules = [
    maxDepthRule({
      n: limits.maxDepth,
      ignoreIntrospection: true,
      flattenFragments: true,
      propagateOnRejection: false,
      onReject: [report('depth')],
    }),
    maxAliasesRule({ n: limits.maxAliases, propagateOnRejection: false, onReject: [report('aliases')] }),
    maxDirectivesRule({ n: limits.maxDirectives, propagateOnRejection: false, onReject: [report('directives')] }),
  ];
  const passed = new Set<string>();
  return (source) => {
    if (passed.has(source)) return null;
    let document: DocumentNode;
    try {
      document = parse(source, { maxTokens: limits.maxTokens });
    } catch {
      return null;
    }
    try {
      checkShape(schema, document, rules);
    } catch (error) {
      if (error instanceof GraphQLError) return error;
      throw error;
    }
    if (source.length <= REMEMBERED_SOURCE_MAX) {
      const oldest = passed.values().next();
      if (passed.size >= REMEMBERED_SOURCES && !oldest.done) passed.delete(oldest.value);
      passed.add(source);
    }
    return null;
  };
}

/** How many accepted sources are remembered, and the longest one remembered. */
const REMEMBERED_SOURCES = 1_000;
const REMEMBERED_SOURCE_MAX = 8 * 1024;

/**
 * The Apollo plugin for what depends on the request, not only the document: the operation type,
 * the variables' text, and the cost with these variables. Its errors are answered with 400.
 */
export function queryLimits(schema: GraphQLSchema, limits: QueryLimits): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation(request) {
          const type = request.operation?.operation;
          if (type && !schema.getRootType(type)) {
            throw limitError('operationType', `This server has no ${type} operations; send a query or a mutation`);
          }
          if (type === 'subscription') {
            throw limitError(
              'operationType',
              'A subscription streams: open it over WebSocket (graphql-transport-ws) or as Server-Sent Events (this POST with Accept: text/event-stream)',
            );
          }
          const { document, operation } = request;
          if (!document || !operation) return;
          checkOperation(schema, limits, { document, operation, ...request.request });
        },
      };
    },
  };
}

/** One operation of a request, as `checkOperation` reads it. */
export type OperationRequest = {
  document: DocumentNode;
  operation: OperationDefinitionNode;
  operationName?: string | null;
  variables?: Record<string, unknown> | null;
};

/**
 * The checks of `queryLimits` for a transport that is not Apollo (the subscriptions of
 * `http/subscriptions.ts`): the variables' text, and the cost with these variables. Throws the
 * limit's GraphQLError.
 */
export function checkOperation(schema: GraphQLSchema, limits: QueryLimits, request: OperationRequest): void {
  checkVariables(request.variables ?? undefined);
  checkCost(schema, request, limits.maxCost);
}

/** An error for a broken limit: 400, GRAPHQL_VALIDATION_FAILED, the limit named. */
function limitError(limit: LimitName, message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'GRAPHQL_VALIDATION_FAILED', limit, http: { status: 400 } } });
}

// Private: GraphQL Armor's rules report through `onReject`; their message says the limit and the count.
function report(limit: LimitName) {
  return (context: ValidationContext | null, error: GraphQLError) => {
    context?.reportError(limitError(limit, error.message.replace(/^Syntax Error: /, '')));
  };
}

function checkShape(schema: GraphQLSchema, document: DocumentNode, rules: ((context: ValidationContext) => unknown)[]): void {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  checkExpansion(document, fragments);
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.OPERATION_DEFINITION || definition.operation !== 'mutation') continue;
    for (const name of ONCE_PER_REQUEST) {
      const count = fieldCounts(definition.selectionSet, fragments, (field) => field.name.value).get(name) ?? 0;
      if (count > 1) throw limitError('sendMessage', `A request may run ${name} once; this one asks ${count} times`);
    }
  }
  const errors = validate(schema, document, rules as Parameters<typeof validate>[2]);
  const [first] = errors;
  if (first) throw first;
  visit(document, {
    SelectionSet(node) {
      for (const [name, count] of fieldCounts(node, fragments, (field) => (field.alias ?? field.name).value)) {
        if (count > REPEATED_FIELD_MAX) {
          throw limitError(
            'repeatedFields',
            `The field "${name}" is selected ${count} times in one selection set; at most ${REPEATED_FIELD_MAX} are accepted`,
          );
        }
      }
    },
    StringValue(node) {
      const problem = textProblem(node.value);
      if (problem) throw badText('a string in the document', problem);
    },
  });
}

/**
 * The fields one selection set asks for once its fragments are merged into it, counted by `keyOf`:
 * inline fragments and named fragments (each name once, as graphql-js merges them) flattened.
 */
function fieldCounts(
  set: SelectionSetNode,
  fragments: Map<string, FragmentDefinitionNode>,
  keyOf: (field: FieldNode) => string,
): Map<string, number> {
  const counts = new Map<string, number>();
  const spread = new Set<string>();
  const walk = (inner: SelectionSetNode) => {
    for (const selection of inner.selections) {
      if (selection.kind === Kind.FIELD) counts.set(keyOf(selection), (counts.get(keyOf(selection)) ?? 0) + 1);
      else if (selection.kind === Kind.INLINE_FRAGMENT) walk(selection.selectionSet);
      else if (!spread.has(selection.name.value)) {
        spread.add(selection.name.value);
        const fragment = fragments.get(selection.name.value);
        if (fragment) walk(fragment.selectionSet);
      }
    }
  };
  walk(set);
  return counts;
}

/**
 * Refuses a document that, with its fragments written out in place, selects more than
 * `EXPANDED_FIELDS_MAX` fields: a "fragment bomb" (`fragment F2 { ...F1 ...F1 }`, level after
 * level) stays a few hundred tokens long while it stands for billions of fields. Counted with one
 * sum per fragment; a fragment cycle counts nothing here (graphql-js refuses it).
 */
function checkExpansion(document: DocumentNode, fragments: Map<string, FragmentDefinitionNode>): void {
  const sizes = new Map<string, number>();
  const sizeOf = (set: SelectionSetNode): number => {
    let size = 0;
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) size += 1 + (selection.selectionSet ? sizeOf(selection.selectionSet) : 0);
      else if (selection.kind === Kind.INLINE_FRAGMENT) size += sizeOf(selection.selectionSet);
      else size += fragmentSize(selection.name.value);
    }
    return size;
  };
  const fragmentSize = (name: string): number => {
    const known = sizes.get(name);
    if (known !== undefined) return known;
    sizes.set(name, 0);
    const fragment = fragments.get(name);
    const size = fragment ? sizeOf(fragment.selectionSet) : 0;
    sizes.set(name, size);
    return size;
  };
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.OPERATION_DEFINITION) continue;
    const size = sizeOf(definition.selectionSet);
    if (size > EXPANDED_FIELDS_MAX) {
      throw limitError(
        'fields',
        `The operation selects ${size > 1e9 ? 'over a billion' : size} fields once its fragments are written out; at most ${EXPANDED_FIELDS_MAX} are accepted`,
      );
    }
  }
}

function checkVariables(variables: Record<string, unknown> | undefined): void {
  if (!variables) return;
  for (const [name, value] of Object.entries(variables)) {
    const found = jsonProblem(value, name, VARIABLE_DEPTH_MAX);
    if (found) throw badText(found.path, found.problem);
  }
}

function badText(field: string, problem: string): GraphQLError {
  return new GraphQLError(`${field} ${problem}`, { extensions: { code: 'BAD_USER_INPUT', field, http: { status: 400 } } });
}

function checkCost(schema: GraphQLSchema, request: OperationRequest, maxCost: number): void {
  const { document, operation } = request;
  const variables = request.variables ?? {};
  const cached = costs.get(document) ?? new Map<string, number>();
  costs.set(document, cached);
  const key = costKey(operation, variables);
  let cost = cached.get(key);
  if (cost === undefined) {
    try {
      cost = getComplexity({
        schema,
        query: document,
        variables,
        operationName: request.operationName ?? undefined,
        estimators: [estimateCost],
      });
    } catch (error) {
      // Variables that do not coerce: execution refuses them with graphql-js's own message, before any resolver.
      if (error instanceof GraphQLError) return;
      throw error;
    }
    const oldest = cached.keys().next();
    if (cached.size >= COSTS_PER_DOCUMENT && !oldest.done) cached.delete(oldest.value);
    cached.set(key, cost);
  }
  if (cost > maxCost) {
    throw limitError(
      'cost',
      `Query cost limit of ${maxCost} exceeded, found ${cost}: ask for smaller pages (first/last) or fewer nested fields`,
    );
  }
}

// Private: costs already computed, per document (Apollo keeps one document object per query text)
// and per the variables a cost can depend on: the Int ones (`first`, `last`), the Boolean ones
// (`@include`, `@skip`) and the length of the lists (`nodes(ids:)`). A sendMessage's text does not
// make its cost computed again.
const costs = new WeakMap<DocumentNode, Map<string, number>>();
const COSTS_PER_DOCUMENT = 100;

function costKey(operation: OperationDefinitionNode, variables: Record<string, unknown>): string {
  const relevant = (operation.variableDefinitions ?? []).flatMap((definition) => {
    const value = variables[definition.variable.name.value] ?? null;
    if (isListTypeNode(definition.type)) return [Array.isArray(value) ? value.length : null];
    return ['Int', 'Boolean'].includes(namedTypeName(definition.type)) ? [value] : [];
  });
  return JSON.stringify([operation.name?.value ?? null, relevant]);
}

function isListTypeNode(type: TypeNode): boolean {
  return type.kind === Kind.LIST_TYPE || (type.kind === Kind.NON_NULL_TYPE && type.type.kind === Kind.LIST_TYPE);
}

function namedTypeName(type: TypeNode): string {
  return type.kind === Kind.NAMED_TYPE ? type.name.value : namedTypeName(type.type);
}

/**
 * The cost of a field: about the number of objects it returns. 0 for a scalar, 1 for an object
 * plus what is under it, and for a list that times the elements it may hold: `first`/`last`
 * (default 20, at most 100) for a connection, 1 for a connection's `edges` (its connection
 * counted them), the number of ids for a list asked by `ids` (`nodes`), `LIST_COST_SIZE` for other
 * lists.
 */
const estimateCost: ComplexityEstimator = ({ type, field, args, childComplexity }) => {
  if (isLeafType(getNamedType(field.type))) return 0;
  const paged = field.args.some((arg) => arg.name === 'first' || arg.name === 'last');
  const inConnection = 'getFields' in type && 'pageInfo' in type.getFields();
  if (paged) return clampPage(args.first ?? args.last) * (1 + childComplexity);
  if (Array.isArray(args.ids)) return Math.max(args.ids.length, 1) * (1 + childComplexity);
  if (isListType(getNullableType(field.type)) && !inConnection) return LIST_COST_SIZE * (1 + childComplexity);
  return 1 + childComplexity;
};

function clampPage(requested: unknown): number {
  if (typeof requested !== 'number' || !Number.isFinite(requested)) return DEFAULT_PAGE_SIZE;
  return Math.min(Math.max(Math.trunc(requested), 1), MAX_PAGE_SIZE);
}
