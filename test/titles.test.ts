/**
 * Titles by the model: after a conversation's first turn the model is asked for a short title,
 * off the reply's path. The reply never waits for it or fails by it; a failure, an unusable answer
 * or a title the user set meanwhile leaves the title as it was. Through HTTP, the real `openai`
 * SDK and a scripted OpenAI-compatible fake.
 */
import type pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { at } from './support/defined.js';
import { delayed, type FakeOpenAi, httpError, reply, startFakeOpenAi, toolCalls } from './support/fake-openai.js';
import { send } from './support/graphql.js';
import { startTestServer, type TestServer } from './support/server.js';
import { until } from './support/wait.js';

let fake: FakeOpenAi;
let server: TestServer;
let db: pg.Client;

beforeAll(async () => {
  fake = await startFakeOpenAi();
  server = await startTestServer({
    env: {
      OPENAI_API_KEY: 'test-key',
      OPENAI_BASE_URL: `${fake.url}/v1`,
      OPENAI_MODEL: 'fake-model',
      TITLE_MODEL: 'fake-title-model',
      OPENAI_MAX_RETRIES: '0',
    },
  });
  db = server.db;
});

afterAll(async () => {
  await server?.close();
  await fake?.close();
});

beforeEach(() => {
  fake.reset();
});

const titleOf = async (id: string) =>
  (await db.query<{ title: string | null }>('select title from conversation where id = $1', [id])).rows[0]?.title ?? null;
const titleRequests = () => fake.requests.filter((request) => request.body.model === 'fake-title-model');

describe('a conversation titled by the model', () => {
  it('gets the model’s title after its first turn, cleaned; the reply came first, and later turns ask nothing', async () => {
    fake.script(reply('Lisbon is lovely in May.'), reply('"Trip to Lisbon in May."\nAnything else?'));
    const client = await server.client('titled');
    const turn = await send(client, 'help me plan a trip to Lisbon in May, we are two adults');
    expect(turn.response).toBe('Lisbon is lovely in May.');
    const id = turn.conversation.id;

    await until(async () => (await titleOf(id)) === 'Trip to Lisbon in May', 'the model’s title');
    const [asked] = titleRequests();
    expect(asked?.body.tools).toBeUndefined();
    const shown = at(asked?.body.messages ?? [], 1, 'the title request’s user message').content ?? '';
    expect(shown).toContain('help me plan a trip to Lisbon in May');
    expect(shown).toContain('Lisbon is lovely in May.');
    const data = await client.request<{ conversation: { title: string } }>('query ($id: ID!) { conversation(id: $id) { title } }', { id });
    expect(data.conversation.title).toBe('Trip to Lisbon in May');

    fake.script(reply('Sure.'));
    await send(client, 'and what about June?', id);
    expect(titleRequests()).toHaveLength(1);
    expect(await titleOf(id)).toBe('Trip to Lisbon in May');
  });

  it('keeps the first message’s title when the title request fails or its answer is unusable, and the reply is unaffected', async () => {
    const client = await server.client('untitled');
    for (const answer of [httpError(500), reply('   '), toolCalls([{ id: 'call_1', name: 'list_tasks', arguments: '{}' }])]) {
      fake.reset();
      fake.script(reply('Done.'), answer);
      const turn = await send(client, 'remember to water the plants');
      expect(turn.response).toBe('Done.');
      await until(() => fake.answered() === 2, 'the title request answered');
      // The request was answered; nothing it holds is a title, so nothing is written (checked a moment later too).
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await titleOf(turn.conversation.id)).toBe('remember to water the plants');
    }
  });

  it('answers without waiting for a slow title, and a title the user sets meanwhile wins', async () => {
    fake.script(reply('Noted.'), delayed(1_000, reply('Groceries')));
    const client = await server.client('renamed');
    const turn = await send(client, 'buy milk and eggs');
    // The reply is here while the title request is still unanswered.
    await until(() => titleRequests().length === 1, 'the title request');
    expect(fake.answered()).toBe(1);
    expect(await titleOf(turn.conversation.id)).toBe('buy milk and eggs');
    await client.request('mutation ($input: UpdateConversationInput!) { updateConversation(input: $input) { id } }', {
      input: { id: turn.conversation.id, title: 'Shopping' },
    });
    await until(() => fake.answered() === 2, 'the title answered');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await titleOf(turn.conversation.id)).toBe('Shopping');
  });

  it('titles a conversation made empty from its first message, then by the model', async () => {
    fake.script(reply('Hello!'), reply('Greetings'));
    const client = await server.client('made-empty');
    const made = await client.request<{ createConversation: { id: string; title: string | null } }>(
      'mutation { createConversation(input: {}) { id title } }',
    );
    expect(made.createConversation.title).toBeNull();
    const turn = await send(client, 'hello there', made.createConversation.id);
    expect(turn.conversation.title).toBe('hello there');
    await until(async () => (await titleOf(made.createConversation.id)) === 'Greetings', 'the model’s title');
  });
});
