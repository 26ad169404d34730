/**
 * Another user's data is invisible through every path. The sweep is generated from
 * `schema.graphql`, not listed by hand: every argument that takes an id (type `ID`, or a string
 * named `id`/`…Id`) or a cursor (`after`/`before` of a connection), on a Query field, on a nested
 * field, or inside a Mutation's input, is given each of bob's ids, cursors or idempotency keys in
 * a request made by alice. Each answer must be null or NOT_FOUND (ids), alice's own data or
 * BAD_USER_INPUT (cursors), alice's own data (keys), never anything of bob's; and not one column of bob's rows may change
 * (`md5(string_agg(t::text, ...))` over conversation, message, tool_call and task). A new field
 * is swept as soon as it is in the schema, and one taking an id the sweep cannot map to one of
 * bob's rows fails the test that lists them, loudly, until the sweep learns it.
 *
 * The REST route and `/mcp` get the same treatment: their id parameters come from the route and
 * from the tools' published input schemas.
 */
import { readFileSync } from 'node:fs';
import {
  buildSchema,
  extendSchema,
  type GraphQLField,
  type GraphQLInputType,
  type GraphQLNamedType,
  type GraphQLObjectType,
  type GraphQLSchema,
  getNamedType,
  getNullableType,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isLeafType,
  isListType,
  isNonNullType,
  isObjectType,
  isUnionType,
  parse,
} from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defined, first } from '../support/defined.js';
import { SEND, type SendResult } from '../support/graphql.js';
import { type Answer, callMcpTool, type GraphQLBody, gql, postMcp, postRest } from '../support/http.js';
import { rowsChecksum } from '../support/security.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { uniqueUser } from '../support/users.js';

// ---------------------------------------------------------------------------------------------
// The generator: targets from the schema
// ---------------------------------------------------------------------------------------------

/** The object types whose rows the sweep can give ids and cursors of (bob has rows of each). */
const KNOWN = ['Conversation', 'Message', 'ToolCall', 'Task'] as const;
type Known = (typeof KNOWN)[number];
/** Connections whose nodes are no rows of their own, but whose cursors the sweep has of bob's. */
const CURSORS_ONLY = ['SearchHit'] as const;
type CursorNode = Known | (typeof CURSORS_ONLY)[number];

type Kind = { of: 'id'; types: Known[] } | { of: 'cursor'; node: CursorNode } | { of: 'key'; key: KeyName };

/**
 * Strings named like ids that are keys the client makes, not row ids: each user has their own
 * (an idempotency key of bob's, sent by alice, is just a new key of alice's).
 */
const KEYS = { clientMessageId: 'message.client_message_id' } as const;
type KeyName = keyof typeof KEYS;

/** One argument to probe: `argPath` is the argument and, inside an input object, the field. */
type Target = {
  name: string;
  operation: 'query' | 'mutation';
  parent: string;
  field: string;
  argPath: string[];
  list: boolean;
  kind: Kind;
  /** Fields from the root to `parent` (empty for a root field). */
  route: GraphQLField<unknown, unknown>[];
};

const isKnown = (name: string): name is Known => (KNOWN as readonly string[]).includes(name);
const hasCursors = (name: string): name is CursorNode => isKnown(name) || (CURSORS_ONLY as readonly string[]).includes(name);
const ID_NAME = /^(id|ids)$|Ids?$/;

/** The node type of a connection type (`edges { node }`), or null when `type` is none. */
function connectionNode(type: GraphQLNamedType): GraphQLNamedType | null {
  if (!isObjectType(type)) return null;
  const edges = type.getFields().edges;
  if (!edges) return null;
  const edge = getNamedType(edges.type);
  if (!isObjectType(edge)) return null;
  const node = edge.getFields().node;
  if (!node) return null;
  return getNamedType(node.type);
}

/** Which of bob's rows an id argument named `name` of `field` points at, or null when unknown. */
function idKind(schema: GraphQLSchema, name: string, field: GraphQLField<unknown, unknown>): Known[] | null {
  let types: string[];
  if (name === 'id' || name === 'ids') {
    const returned = getNamedType(field.type);
    const target = connectionNode(returned) ?? returned;
    if (isObjectType(target)) types = [target.name];
    else if (isInterfaceType(target) || isUnionType(target)) types = schema.getPossibleTypes(target).map((type) => type.name);
    // A field that answers a scalar about a row (`exportConversation: String!`) names its type at its end.
    else if (isLeafType(target)) types = KNOWN.filter((known) => field.name.endsWith(known));
    else return null;
    // A field that answers a payload (`deleteConversation { deletedId }`) names its type at its end.
    if (!types.every(isKnown)) types = KNOWN.filter((known) => field.name.endsWith(known));
  } else {
    const stem = name.replace(/Ids?$/, '').toLowerCase();
    types = KNOWN.filter((known) => known.toLowerCase() === stem);
  }
  return types.length > 0 && types.every(isKnown) ? (types as Known[]) : null;
}

/** Fields from Query to an object of `typeName`, through fields without required arguments (shortest first). */
function routeTo(schema: GraphQLSchema, typeName: string): GraphQLField<unknown, unknown>[] | null {
  const query = defined(schema.getQueryType(), 'the Query type');
  const queue: { type: GraphQLObjectType; route: GraphQLField<unknown, unknown>[] }[] = [{ type: query, route: [] }];
  const seen = new Set<string>([query.name]);
  for (let item = queue.shift(); item !== undefined; item = queue.shift()) {
    const { type, route } = item;
    for (const field of Object.values(type.getFields())) {
      if (field.args.some((arg) => isNonNullType(arg.type) && arg.defaultValue === undefined)) continue;
      const next = getNamedType(field.type);
      if (!isObjectType(next) || seen.has(next.name)) continue;
      if (next.name === typeName) return [...route, field];
      seen.add(next.name);
      queue.push({ type: next, route: [...route, field] });
    }
  }
  return null;
}

/**
 * Every id and cursor argument of `schema` (root fields, nested fields, fields of input objects),
 * and, in `unknown`, every one the sweep cannot probe, each with the reason.
 */
function discoverTargets(schema: GraphQLSchema): { targets: Target[]; unknown: string[] } {
  const targets: Target[] = [];
  const unknown: string[] = [];
  const mutation = schema.getMutationType();
  const roots = new Map<string, 'query' | 'mutation'>([
    [defined(schema.getQueryType(), 'the Query type').name, 'query'],
    ...(mutation ? [[mutation.name, 'mutation'] as [string, 'mutation']] : []),
  ]);
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__')) continue;
    if (schema.getSubscriptionType()?.name === type.name) continue;
    for (const field of Object.values(type.getFields())) {
      const visit = (name: string, argType: GraphQLInputType, path: string[], seen: Set<string>) => {
        const named = getNamedType(argType);
        const where = `${type.name}.${field.name}(${path.join('.')}: ${String(argType)})`;
        if (isInputObjectType(named)) {
          if (seen.has(named.name)) return;
          for (const inner of Object.values(named.getFields()))
            visit(inner.name, inner.type, [...path, inner.name], new Set([...seen, named.name]));
          return;
        }
        const isKey = named.name === 'String' && Object.hasOwn(KEYS, name);
        const isId = !isKey && (named.name === 'ID' || (named.name === 'String' && ID_NAME.test(name)));
        const isCursor = named.name === 'String' && (name === 'after' || name === 'before');
        if (!isId && !isCursor && !isKey) return;
        let kind: Kind | null = null;
        if (isKey) {
          kind = { of: 'key', key: name as KeyName };
        } else if (isId) {
          const types = idKind(schema, name, field);
          kind = types && { of: 'id', types };
        } else {
          const node = connectionNode(getNamedType(field.type));
          kind = node && hasCursors(node.name) ? { of: 'cursor', node: node.name } : null;
        }
        if (!kind) {
          unknown.push(`${where}: no rows of bob's known for it`);
          return;
        }
        const operation = roots.get(type.name) ?? 'query';
        const route = roots.has(type.name) ? [] : routeTo(schema, type.name);
        if (!route) {
          unknown.push(`${where}: ${type.name} cannot be reached from Query without arguments`);
          return;
        }
        const list = isListType(getNullableType(argType));
        targets.push({
          name: `${type.name}.${field.name}(${path.join('.')})`,
          operation,
          parent: type.name,
          field: field.name,
          argPath: path,
          list,
          kind,
          route,
        });
      };
      for (const arg of field.args) visit(arg.name, arg.type, [arg.name], new Set());
    }
  }
  return { targets, unknown };
}

// ---------------------------------------------------------------------------------------------
// The requests: a document per target and value
// ---------------------------------------------------------------------------------------------

/** A value of `type` that passes validation: what a required argument the sweep does not probe gets. */
function filler(type: GraphQLInputType): unknown {
  if (isNonNullType(type)) return filler(type.ofType);
  if (isListType(type)) return [filler(type.ofType)];
  if (isInputObjectType(type)) {
    return Object.fromEntries(
      Object.values(type.getFields())
        .filter((field) => isNonNullType(field.type) && field.defaultValue === undefined)
        .map((field) => [field.name, filler(field.type)]),
    );
  }
  if (isEnumType(type)) return first(type.getValues(), `the values of enum ${type.name}`).name;
  switch (type.name) {
    case 'Int':
    case 'Float':
      return 1;
    case 'Boolean':
      return false;
    case 'ID':
      return crypto.randomUUID();
    case 'JSON':
    case 'JSONObject':
      return {};
    case 'DateTimeISO':
      return new Date().toISOString();
    default:
      return 'idor probe';
  }
}

/** Every field without arguments, `depth` object levels down (`__typename` keeps it non-empty). */
function selection(type: GraphQLNamedType, depth: number): string {
  if (isLeafType(type)) return '';
  if (!isObjectType(type) && !isInterfaceType(type)) return '{ __typename }';
  const parts = ['__typename'];
  for (const field of Object.values(type.getFields())) {
    if (field.args.length > 0) continue;
    const named = getNamedType(field.type);
    if (isLeafType(named)) parts.push(field.name);
    else if (depth > 0) parts.push(`${field.name} ${selection(named, depth - 1)}`);
  }
  return `{ ${parts.join(' ')} }`;
}

/** The document and variables with which alice gives `value` to `target`. */
function probe(schema: GraphQLSchema, target: Target, value: unknown): { query: string; variables: Record<string, unknown> } {
  const parent = schema.getType(target.parent) as GraphQLObjectType;
  const field = defined(parent.getFields()[target.field], `the field ${target.parent}.${target.field}`);
  const variables: Record<string, unknown> = {};
  const definitions: string[] = [];
  const args: string[] = [];
  for (const arg of field.args) {
    const probed = arg.name === target.argPath[0];
    if (!probed && !(isNonNullType(arg.type) && arg.defaultValue === undefined)) continue;
    let argValue: unknown = probed && target.argPath.length === 1 ? value : filler(arg.type);
    if (probed && target.argPath.length > 1) {
      // Into the input object: the probed field set, the required others filled.
      let holder = argValue as Record<string, unknown>;
      for (const key of target.argPath.slice(1, -1)) {
        holder[key] ??= {};
        holder = holder[key] as Record<string, unknown>;
      }
      holder[defined(target.argPath.at(-1), 'the last key of the argument path')] = value;
      argValue = (argValue as Record<string, unknown>) ?? {};
    }
    variables[arg.name] = argValue;
    definitions.push(`$${arg.name}: ${String(arg.type)}`);
    args.push(`${arg.name}: $${arg.name}`);
  }
  let body = `${target.field}${args.length > 0 ? `(${args.join(', ')})` : ''} ${selection(getNamedType(field.type), 3)}`;
  for (const step of [...target.route].reverse()) {
    const paged = step.args.some((arg) => arg.name === 'first') ? '(first: 5)' : '';
    body = `${step.name}${paged} { ${body} }`;
  }
  return { query: `${target.operation} Probe${definitions.length > 0 ? `(${definitions.join(', ')})` : ''} { ${body} }`, variables };
}

/** The values the probed field took in `data`, through lists on the way. */
function valuesAt(data: unknown, target: Target): unknown[] {
  let current: unknown[] = [data];
  for (const step of [...target.route.map((field) => field.name), target.field]) {
    current = current.flatMap((item) => {
      if (item === null || item === undefined) return [];
      const next = (item as Record<string, unknown>)[step];
      return Array.isArray(next) ? next : [next];
    });
  }
  return current;
}

// ---------------------------------------------------------------------------------------------
// The sweep
// ---------------------------------------------------------------------------------------------

const schema = buildSchema(readFileSync('schema.graphql', 'utf8'));
const { targets, unknown } = discoverTargets(schema);

let server: TestServer;
const alice = uniqueUser('alice');
const bob = uniqueUser('bob');
/** Every one of bob's texts carries this, so that any leak of them is found by a plain search. */
const SECRET = `bobsecret${crypto.randomUUID().slice(0, 8)}`;
const bobIds = {} as Record<Known, string[]>;
const bobCursors = {} as Record<CursorNode, string[]>;
const bobKeys = {} as Record<KeyName, string[]>;

beforeAll(async () => {
  server = await startTestServer();
  // bob: two conversations with messages, add_task and list_tasks tool calls, two tasks, metadata.
  const first = await gql<SendResult>(server, bob, SEND, {
    input: { message: `add a task to buy ${SECRET} milk`, clientMessageId: `key-1-${bob}`, metadata: { secret: SECRET } },
  });
  const conversationId = defined(first.body?.data, 'the data of the first turn').sendMessage.conversation.id;
  await gql(server, bob, SEND, { input: { message: 'show my tasks', conversationId } });
  await gql(server, bob, SEND, { input: { message: `add a task to call ${SECRET} grandma`, clientMessageId: `key-2-${bob}` } });
  // alice: a conversation of her own, so that nested fields are reached through her data.
  await gql(server, alice, SEND, { input: { message: 'add a task to buy apples' } });

  const tables: Record<Known, string> = { Conversation: 'conversation', Message: 'message', ToolCall: 'tool_call', Task: 'task' };
  for (const known of KNOWN) {
    const { rows } = await server.db.query(`select id from ${tables[known]} where user_id = $1 order by id`, [bob]);
    bobIds[known] = rows.map((row) => row.id as string);
  }
  for (const [key, column] of Object.entries(KEYS)) {
    const [table, name] = column.split('.');
    const { rows } = await server.db.query(`select ${name} as key from ${table} where user_id = $1 and ${name} is not null order by id`, [
      bob,
    ]);
    bobKeys[key as KeyName] = rows.map((row) => row.key as string);
  }
  expect(bobKeys.clientMessageId).toHaveLength(2);
  type Edge = { cursor: string };
  const cursors = await gql<{
    conversations: { edges: (Edge & { node: { messages: { edges: Edge[] }; toolCalls: { edges: Edge[] } } })[] };
    tasks: { edges: Edge[] };
    searchMessages: { edges: Edge[] };
  }>(
    server,
    bob,
    `{ conversations(first: 100) { edges { cursor node { messages(first: 100) { edges { cursor } } toolCalls(first: 100) { edges { cursor } } } } }
       tasks(first: 100) { edges { cursor } } searchMessages(query: "${SECRET}", first: 100) { edges { cursor } } }`,
  );
  const data = defined(cursors.body?.data, 'the data of the cursor query');
  bobCursors.Conversation = data.conversations.edges.map((edge: Edge) => edge.cursor);
  bobCursors.Task = data.tasks.edges.map((edge: Edge) => edge.cursor);
  bobCursors.SearchHit = data.searchMessages.edges.map((edge: Edge) => edge.cursor);
  expect(bobCursors.SearchHit.length).toBeGreaterThan(0);
  bobCursors.Message = data.conversations.edges.flatMap((edge: { node: { messages: { edges: Edge[] } } }) =>
    edge.node.messages.edges.map((e) => e.cursor),
  );
  bobCursors.ToolCall = data.conversations.edges.flatMap((edge: { node: { toolCalls: { edges: Edge[] } } }) =>
    edge.node.toolCalls.edges.map((e) => e.cursor),
  );
  expect(Object.fromEntries(KNOWN.map((known) => [known, [bobIds[known].length, bobCursors[known].length]]))).toEqual({
    Conversation: [2, 2],
    Message: [6, 6],
    ToolCall: [3, 3],
    Task: [2, 2],
  });
});

afterAll(async () => {
  await server?.close();
});

/** What of bob's an answer shows: any of his ids in its data, his secret anywhere. */
function leaks(answer: Answer): string[] {
  const found: string[] = [];
  if (answer.text.includes(SECRET)) found.push(`the text of bob's rows (${SECRET})`);
  const data = JSON.stringify((answer.body as GraphQLBody | undefined)?.data ?? answer.body ?? null);
  for (const known of KNOWN) for (const id of bobIds[known]) if (data.includes(id)) found.push(`bob's ${known} ${id}`);
  return found;
}

describe('the generator', () => {
  it('knows how to probe every id and cursor argument of the schema', () => {
    expect(unknown, 'arguments taking ids the sweep cannot probe: teach it which rows they point at').toEqual([]);
  });

  it('finds the arguments that take ids and cursors today (a generator that finds nothing sweeps nothing)', () => {
    expect(targets.map((target) => target.name)).toEqual(
      expect.arrayContaining([
        'Query.conversation(id)',
        'Query.message(id)',
        'Query.node(id)',
        'Query.nodes(ids)',
        'Query.conversations(after)',
        'Query.conversations(before)',
        'Query.tasks(after)',
        'Conversation.messages(after)',
        'Conversation.messages(before)',
        'Conversation.toolCalls(after)',
        'Query.searchMessages(after)',
        'Query.searchMessages(filter.conversationId)',
        'Mutation.sendMessage(input.conversationId)',
        'Mutation.sendMessage(input.clientMessageId)',
      ]),
    );
  });

  it('reports, rather than skips, an id argument it does not know', () => {
    const extended = extendSchema(
      schema,
      parse(`
        type Widget { id: ID! parts(ownerId: ID): [Widget!]! }
        extend type Query { widget(id: ID!): Widget gadgets(after: String): [Widget!]! }
        extend type Message { sibling(messageId: ID!): Message }
      `),
    );
    const found = discoverTargets(extended);
    expect(found.unknown.map((line) => line.split(':')[0])).toEqual(
      expect.arrayContaining(['Widget.parts(ownerId', 'Query.widget(id', 'Query.gadgets(after']),
    );
    expect(found.targets.map((target) => target.name)).toContain('Message.sibling(messageId)');
  });
});

/** An answer that shows nothing: null, or a connection with no edges (a search or listing narrowed to bob's row). */
function nothing(found: unknown): boolean {
  if (found === null) return true;
  const edges = (found as { edges?: unknown } | undefined)?.edges;
  return Array.isArray(edges) && edges.length === 0;
}

describe.each(targets.map((target) => [target.name, target] as const))('alice probing %s with bob’s values', (_name, target) => {
  const expected = {
    id: 'gets null (an empty connection) or NOT_FOUND',
    cursor: 'gets her own data or BAD_USER_INPUT',
    key: 'gets her own data (the key is hers as much as bob’s)',
  }[target.kind.of];
  it(`${expected}, nothing of bob’s, and changes none of his rows`, async () => {
    const before = await rowsChecksum(server.db, bob);
    const kind = target.kind;
    const values: unknown[] =
      kind.of === 'id' ? kind.types.flatMap((type) => bobIds[type]) : kind.of === 'cursor' ? bobCursors[kind.node] : bobKeys[kind.key];
    const sent = target.list ? [values] : values;
    const wrong: string[] = [];
    for (const value of sent) {
      const { query, variables } = probe(schema, target, value);
      const answer = await gql(server, alice, query, variables);
      const shown = `${query} ${JSON.stringify(variables)} -> HTTP ${answer.status} ${answer.text.slice(0, 400)}`;
      const errorCodes = (answer.body?.errors ?? []).map((error) => error.extensions?.code);
      const allowed = { id: ['NOT_FOUND'], cursor: ['BAD_USER_INPUT'], key: [] as string[] }[kind.of];
      if (answer.status >= 500 || errorCodes.some((code) => !allowed.includes(code as string))) wrong.push(`unexpected answer: ${shown}`);
      else if (kind.of === 'id' && errorCodes.length === 0 && valuesAt(answer.body?.data, target).some((found) => !nothing(found))) {
        wrong.push(`not null: ${shown}`);
      } else if (errorCodes.length === 0 && valuesAt(answer.body?.data, target).length === 0) {
        wrong.push(`the probed field was never reached (alice's data is missing?): ${shown}`);
      }
      for (const leak of leaks(answer)) wrong.push(`leaks ${leak}: ${shown}`);
    }
    expect(wrong.join('\n')).toBe('');
    expect(await rowsChecksum(server.db, bob), "bob's rows changed").toEqual(before);
  });
});

describe('the REST route and /mcp', () => {
  it("answers 404 for bob's conversations on the REST route, and 403 for bob's path, changing nothing", async () => {
    const before = await rowsChecksum(server.db, bob);
    for (const conversationId of bobIds.Conversation) {
      const answer = await postRest(
        server,
        alice,
        { conversation_id: conversationId, message: 'add a task to steal milk' },
        { user: alice },
      );
      expect(answer.status, answer.text).toBe(404);
      expect(leaks(answer)).toEqual([]);
    }
    const path = await postRest(server, bob, { conversation_id: bobIds.Conversation[0], message: 'show my tasks' }, { user: alice });
    expect(path.status, path.text).toBe(403);
    expect(leaks(path)).toEqual([]);
    expect(await rowsChecksum(server.db, bob)).toEqual(before);
  });

  it("gives every /mcp tool that takes an id each of bob's ids: a tool error, nothing of bob's, nothing changed", async () => {
    const before = await rowsChecksum(server.db, bob);
    const listed = await postMcp(server, { jsonrpc: '2.0', id: 1, method: 'tools/list' }, { user: alice });
    type Tool = { name: string; inputSchema: { properties?: Record<string, { type?: string }>; required?: string[] } };
    const tools = (listed.body?.result?.tools ?? []) as Tool[];
    expect(tools.length, listed.text).toBeGreaterThan(0);

    const wrong: string[] = [];
    let probed = 0;
    for (const tool of tools) {
      const properties = tool.inputSchema.properties ?? {};
      for (const property of Object.keys(properties).filter((key) => /(^id$|_id$|Id$)/.test(key))) {
        const stem = property
          .replace(/(_id|Id)$/, '')
          .replace(/_/g, '')
          .toLowerCase();
        const known = KNOWN.find((type) => type.toLowerCase() === stem);
        if (!known) {
          wrong.push(`${tool.name}(${property}): no rows of bob's known for it`);
          continue;
        }
        for (const id of bobIds[known]) {
          const args: Record<string, unknown> = {};
          for (const required of tool.inputSchema.required ?? [])
            if (properties[required]?.type === 'string') args[required] = 'idor probe';
          args[property] = id;
          const answer = await callMcpTool(server, tool.name, args, { user: alice });
          probed++;
          const shown = `${tool.name} ${JSON.stringify(args)} -> HTTP ${answer.status} ${answer.text.slice(0, 300)}`;
          if (answer.status !== 200 || answer.body?.result?.isError !== true) wrong.push(`not a tool error: ${shown}`);
          if (answer.text.includes(SECRET)) wrong.push(`leaks bob's text: ${shown}`);
        }
      }
    }
    const list = await callMcpTool(server, 'list_tasks', {}, { user: alice });
    if (list.text.includes(SECRET)) wrong.push(`list_tasks shows bob's tasks: ${list.text.slice(0, 300)}`);
    expect(wrong.join('\n')).toBe('');
    expect(probed).toBeGreaterThanOrEqual(3 * bobIds.Task.length);
    expect(await rowsChecksum(server.db, bob)).toEqual(before);
  });
});
