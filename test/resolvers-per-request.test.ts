/**
 * Resolvers and loaders are made fresh for every request: a request makes each resolver class it
 * uses once, on first use, and reuses that instance for every field of the class; two requests,
 * even running at the same time, never share a resolver instance or a loader. Observed from the
 * outside: the request container and the resolver and loader prototypes are spied on from here,
 * nothing in `src/` knows it is being watched.
 */
import DataLoader from 'dataloader';
import type { ResolverData } from 'type-graphql';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { seed } from '../bench/seed.js';
import type { Viewer } from '../src/auth/viewer.js';
import type { Chat } from '../src/chat/chat.js';
import { unauthenticated } from '../src/errors.js';
import { RequestContainer, requestContainer } from '../src/graphql/container.js';
import { type Context, createContext, type RequestScope } from '../src/graphql/context.js';
import { ConversationResolver } from '../src/graphql/resolvers/conversation.js';
import { MessageResolver } from '../src/graphql/resolvers/message.js';
import { ViewerResolver } from '../src/graphql/resolvers/viewer.js';
import { createLogger } from '../src/log.js';
import { at, defined, first } from './support/defined.js';
import { startTestServer, type TestServer } from './support/server.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.close();
});

afterEach(() => {
  vi.restoreAllMocks();
});

describe('the request container', () => {
  // The container only hands the scope over; the fields called below need no chat.
  const chat = {} as Chat;
  const log = createLogger('silent');
  const contextOf = (auth: Viewer | ReturnType<typeof unauthenticated>): Context =>
    createContext(server.app.orm.em.fork(), chat, auth, log, server.config.search);
  // As type-graphql asks for a resolver: the container of the field's context, then the instance.
  const get = <T>(context: Context, resolverClass: new (scope: RequestScope) => T): T => {
    const data = { context } as ResolverData<Context>;
    return requestContainer(data).get(resolverClass, data) as T;
  };

  it('makes a resolver once per request, on first use, with that request’s viewer and loaders', () => {
    const alice = contextOf({ userId: 'alice' });
    const bob = contextOf({ userId: 'bob' });

    const first = get(alice, ViewerResolver);
    expect(get(alice, ViewerResolver)).toBe(first);
    expect(get(alice, ConversationResolver)).toBe(get(alice, ConversationResolver));
    expect(get(alice, ConversationResolver)).not.toBe(first);

    expect(get(bob, ViewerResolver)).not.toBe(first);
    expect(get(bob, ConversationResolver)).not.toBe(get(alice, ConversationResolver));
    expect(first.viewer()).toEqual({ id: 'alice' });
    expect(get(bob, ViewerResolver).viewer()).toEqual({ id: 'bob' });

    expect(alice.scope.em).not.toBe(bob.scope.em);
    expect(alice.scope.loaders).not.toBe(bob.scope.loaders);
    for (const name of Object.keys(alice.scope.loaders) as (keyof typeof alice.scope.loaders)[]) {
      expect(alice.scope.loaders[name], name).not.toBe(bob.scope.loaders[name]);
    }
  });

  it('makes the resolvers of a request without a viewer; the fields that need one throw its stored error', () => {
    const error = unauthenticated('Missing bearer token: send "Authorization: Bearer <token>"');
    const anonymous = contextOf(error);
    const resolver = get(anonymous, ViewerResolver);
    expect(() => resolver.viewer()).toThrow(error);
    expect(() => anonymous.scope.loaders).toThrow(error);
  });
});

describe('concurrent requests', () => {
  const BROWSE = /* GraphQL */ `query ($last: Int!) { conversations(first: 10) { edges { node {
    id title lastMessage { content }
    messages(last: $last) { edges { node { id content toolCalls { name } } } } } } } }`;
  type Browse = {
    conversations: {
      edges: {
        node: {
          id: string;
          title: string;
          lastMessage: { content: string };
          messages: { edges: { node: { id: string; content: string; toolCalls: { name: string }[] } }[] };
        };
      }[];
    };
  };

  it('share no resolver instance and no loader, each reusing its own across fields, and answer as they would alone', async () => {
    const users = ['con-alice', 'con-bob'] as const;
    const conversations: Record<string, string[]> = {};
    for (const user of users) {
      conversations[user] = await seed(server.db, user, 3, 6);
      await server.db.query(`update conversation set title = user_id || ' ' || title where user_id = $1`, [user]);
      await server.db.query(`update message set content = user_id || ': ' || content where user_id = $1`, [user]);
    }
    const alice = await server.client('con-alice');
    const bob = await server.client('con-bob');
    // Each request is told apart by its page size: alice asks twice at once, with 2 and with 3.
    const requests = [
      { client: alice, user: 'con-alice', last: 2 },
      { client: alice, user: 'con-alice', last: 3 },
      { client: bob, user: 'con-bob', last: 4 },
    ];
    const alone = [];
    for (const r of requests) alone.push(await r.client.request<Browse>(BROWSE, { last: r.last }));

    const gets = vi.spyOn(RequestContainer.prototype, 'get');
    const messages = vi.spyOn(ConversationResolver.prototype, 'messages');
    const lastMessage = vi.spyOn(ConversationResolver.prototype, 'lastMessage');
    const toolCalls = vi.spyOn(MessageResolver.prototype, 'toolCalls');
    const loads = vi.spyOn(DataLoader.prototype, 'load');
    const together = await Promise.all(requests.map((r) => r.client.request<Browse>(BROWSE, { last: r.last })));

    // The same answers as one at a time, each of its own user only.
    expect(together).toEqual(alone);
    requests.forEach((r, i) => {
      const edges = at(together, i, 'the answers sent together').conversations.edges;
      expect(edges.map((e) => e.node.id).sort()).toEqual([...defined(conversations[r.user], `the conversations of ${r.user}`)].sort());
      for (const { node } of edges) {
        expect(node.title.startsWith(`${r.user} `)).toBe(true);
        expect(node.messages.edges).toHaveLength(r.last);
        for (const m of [node.lastMessage, ...node.messages.edges.map((e) => e.node)])
          expect(m.content.startsWith(`${r.user}: `)).toBe(true);
      }
    });

    // Three requests, three containers; each made two resolvers (conversations, messages and
    // lastMessage on one ConversationResolver; toolCalls on one MessageResolver), none handed to another.
    const containers = new Set(gets.mock.contexts);
    expect(containers.size).toBe(3);
    const madeBy = new Map<object, RequestContainer>();
    gets.mock.results.forEach((result, i) => {
      const instance = result.value as object;
      const container = gets.mock.contexts[i] as RequestContainer;
      expect(madeBy.get(instance) ?? container).toBe(container);
      madeBy.set(instance, container);
    });
    expect(madeBy.size).toBe(6);
    for (const container of containers) expect([...madeBy.values()].filter((c) => c === container)).toHaveLength(2);

    // Per request (told by its page size): one ConversationResolver for all its conversations' fields.
    const resolverOf = new Map<number, Set<unknown>>();
    const resolverOfRoot = new Map<object, unknown>();
    messages.mock.calls.forEach(([root, , , last], i) => {
      const instance = messages.mock.contexts[i];
      const page = defined(last, 'the last argument of messages');
      resolverOf.set(page, (resolverOf.get(page) ?? new Set()).add(instance));
      resolverOfRoot.set(root, instance);
    });
    expect(messages).toHaveBeenCalledTimes(9);
    expect([...resolverOf.keys()].sort()).toEqual([2, 3, 4]);
    for (const instances of resolverOf.values()) expect(instances.size).toBe(1);
    expect(new Set([...resolverOf.values()].flatMap((s) => [...s])).size).toBe(3);
    // lastMessage of a conversation ran on the same instance as its messages.
    expect(lastMessage).toHaveBeenCalledTimes(9);
    lastMessage.mock.calls.forEach(([root], i) => {
      expect(lastMessage.mock.contexts[i]).toBe(resolverOfRoot.get(root));
    });
    // toolCalls of every message: one MessageResolver per request, three in all.
    expect(toolCalls).toHaveBeenCalled();
    expect(new Set(toolCalls.mock.contexts).size).toBe(3);

    // The page loader of each request is its own: one loader per page size, three in all.
    const loaderOf = new Map<number, Set<unknown>>();
    loads.mock.calls.forEach(([key], i) => {
      const last = (key as { args?: { last?: number } }).args?.last;
      if (last === undefined || last === 1) return; // lastMessage's page: `last: 1` in every request
      loaderOf.set(last, (loaderOf.get(last) ?? new Set()).add(loads.mock.contexts[i]));
    });
    expect([...loaderOf.keys()].sort()).toEqual([2, 3, 4]);
    for (const loaders of loaderOf.values()) expect(loaders.size).toBe(1);
    expect(new Set([...loaderOf.values()].flatMap((s) => [...s])).size).toBe(3);
  });
});

describe('a request without a viewer', () => {
  it('is answered UNAUTHENTICATED with the authenticator’s message by every field that needs the viewer', async () => {
    const message = 'Missing bearer token: send "Authorization: Bearer <token>"';
    // A nullable field answers null beside its error; a non-null one nulls the whole data.
    for (const [query, data] of [
      ['{ viewer { id } }', null],
      ['{ conversations { edges { cursor } } }', null],
      ['{ tasks { edges { cursor } } }', null],
      [`{ message(id: "${crypto.randomUUID()}") { id } }`, { message: null }],
      [`{ conversation(id: "${crypto.randomUUID()}") { id } }`, { conversation: null }],
      ['mutation { sendMessage(input: { message: "hi" }) { response } }', null],
    ] as const) {
      const response = await fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query }),
      });
      const body = (await response.json()) as { data: unknown; errors: { message: string; extensions: { code: string } }[] };
      expect(body.errors, query).toEqual([
        expect.objectContaining({ message, extensions: expect.objectContaining({ code: 'UNAUTHENTICATED' }) }),
      ]);
      expect(body.data, query).toEqual(data);
    }
    // Two fields, two errors, both the stored one.
    const both = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer not.a.jwt' },
      body: JSON.stringify({ query: `{ message(id: "${crypto.randomUUID()}") { id } conversation(id: "${crypto.randomUUID()}") { id } }` }),
    });
    const body = (await both.json()) as { data: unknown; errors: { message: string; extensions: { code: string } }[] };
    expect(body.data).toEqual({ message: null, conversation: null });
    expect(body.errors.map((e) => e.extensions.code)).toEqual(['UNAUTHENTICATED', 'UNAUTHENTICATED']);
    expect(new Set(body.errors.map((e) => e.message)).size).toBe(1);
    expect(first(body.errors, 'the GraphQL errors').message).toMatch(/^Invalid bearer token: /);
  });
});
