/**
 * Property-based fuzzing with fast-check, against the real server and database: arbitrary text
 * (all of Unicode, lone surrogates, NUL and control characters included, sizes up to and past
 * the limits), arbitrary JSON for metadata, arbitrary cursors, arbitrary token claims signed with
 * the right secret, arbitrary REST bodies and `/mcp` tool arguments.
 *
 * For every input: never HTTP 500, never INTERNAL_SERVER_ERROR; input the contract accepts is
 * stored exactly as sent (read back from PostgreSQL), input it refuses is refused with its code
 * and stores nothing; and bob, who is never part of a request, has not one row changed.
 * Where the contract leaves a boundary open (depth 8 or 9, 8 KiB give or take a few hundred
 * bytes, a claim within a minute of now) the oracle accepts either answer, and checks only that
 * it is one of the two, done properly.
 *
 * Runs are bounded (a fixed number each, a fixed seed printed in the test name; `FC_SEED=<n>`
 * replays another) and every run uses a user of its own, so no run depends on another.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RATE_LIMITS_OFF } from '../../src/config.js';
import { defined } from '../support/defined.js';
import { SEND, type SendResult } from '../support/graphql.js';
import { type Answer, callMcpTool, gql, postGraphQL, postRest } from '../support/http.js';
import {
  countRows,
  fuzzSeed,
  nowSeconds,
  ownCursors,
  RAW_DATABASE_TEXT,
  rowsChecksum,
  signClaims,
  type ViewerData,
} from '../support/security.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { uniqueUser } from '../support/users.js';

let server: TestServer;
const bob = uniqueUser('bob');

beforeAll(async () => {
  // Hundreds of turns: the per-user rate limits are another suite's subject.
  server = await startTestServer({ env: { ...RATE_LIMITS_OFF } });
  const first = await gql<SendResult>(server, bob, SEND, { input: { message: 'add a task to buy milk', metadata: { owner: 'bob' } } });
  await gql<SendResult>(server, bob, SEND, {
    input: {
      message: 'show my tasks',
      conversationId: defined(first.body?.data, 'the data of the first turn').sendMessage.conversation.id,
    },
  });
});

afterAll(async () => {
  await server?.close();
});

// ---------------------------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------------------------

/** One code point of any kind, never a lone surrogate or NUL. */
const cleanUnit = fc.oneof(
  fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
  fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }),
);
/** One hostile unit: a lone surrogate, NUL, a control character, or a character that looks like nothing. */
const hostileUnit = fc.oneof(
  fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code)),
  fc.constantFrom('\u0000', '\u0001', '\u001f', '\u007f', '\u0085', '\u009f', '\ufeff', '\ufffd', ' ', '\t', '\n', '\u2028', '🦊'),
);
/** Units of a string in JSON values: now and then a hostile one. */
const jsonUnit = fc.oneof({ weight: 40, arbitrary: cleanUnit }, { weight: 1, arbitrary: hostileUnit });
/** Mostly clean text, sometimes text with hostile units in it. */
const text = (maxLength: number, minLength = 0) =>
  fc.oneof(
    { weight: 4, arbitrary: fc.string({ unit: cleanUnit, minLength, maxLength }) },
    {
      weight: 1,
      arbitrary: fc.string({
        unit: fc.oneof({ weight: 5, arbitrary: cleanUnit }, { weight: 1, arbitrary: hostileUnit }),
        minLength,
        maxLength,
      }),
    },
  );

/** `levels` objects nested in each other. */
const nested = (levels: number): Record<string, unknown> => {
  let value: Record<string, unknown> = { leaf: 'x' };
  for (let level = 1; level < levels; level++) value = { down: value };
  return value;
};

const metadataArb = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.dictionary(fc.string({ unit: jsonUnit, maxLength: 8 }), fc.jsonValue({ maxDepth: 3, stringUnit: jsonUnit }), {
      maxKeys: 4,
    }),
  },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 14 }).map(nested) },
  { weight: 1, arbitrary: fc.integer({ min: 7_500, max: 9_000 }).map((n) => ({ big: 'x'.repeat(n) })) },
  { weight: 1, arbitrary: fc.constantFrom(' ', '\t', ' \n ', '', '\u3000').map((key) => ({ [key]: 1 })) },
);

const messageArb = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .tuple(fc.constantFrom('', 'add a task to buy ', 'show my tasks ', 'hello '), text(40))
      .map(([prefix, rest]) => prefix + rest),
  },
  { weight: 1, arbitrary: fc.integer({ min: 31_990, max: 32_010 }).map((n) => `add ${'y'.repeat(n - 4)}`) },
  { weight: 1, arbitrary: text(300) },
);

// ---------------------------------------------------------------------------------------------
// The contract, as an oracle: 'accept', 'refuse', or 'either' where it leaves a boundary open
// ---------------------------------------------------------------------------------------------

type Verdict = 'accept' | 'refuse' | 'either';

const isText = (value: string) => value.isWellFormed() && !value.includes('\u0000');

/** Combines verdicts: any refusal refuses; else any open boundary leaves it open. */
const all = (...verdicts: Verdict[]): Verdict =>
  verdicts.includes('refuse') ? 'refuse' : verdicts.includes('either') ? 'either' : 'accept';

/** A length limit counted in UTF-16 units or in code points: open when the two disagree. */
function withinLength(value: string, min: number, max: number): Verdict {
  const units = value.length;
  const points = [...value].length;
  const inUnits = units >= min && units <= max;
  const inPoints = points >= min && points <= max;
  return inUnits && inPoints ? 'accept' : !inUnits && !inPoints ? 'refuse' : 'either';
}

function depthOf(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0;
  return 1 + Math.max(0, ...Object.values(value as Record<string, unknown>).map(depthOf));
}

function metadataVerdict(metadata: Record<string, unknown>): Verdict {
  const verdicts: Verdict[] = [];
  const walk = (value: unknown) => {
    if (typeof value === 'string') verdicts.push(isText(value) ? 'accept' : 'refuse');
    else if (value !== null && typeof value === 'object') {
      for (const [key, inner] of Object.entries(value)) {
        verdicts.push(!isText(key) ? 'refuse' : key === '' ? 'either' : key.trim() === '' ? 'refuse' : 'accept');
        walk(inner);
      }
    }
  };
  walk(metadata);
  const depth = depthOf(metadata);
  verdicts.push(depth <= 7 ? 'accept' : depth >= 10 ? 'refuse' : 'either');
  const bytes = Buffer.byteLength(JSON.stringify(metadata));
  verdicts.push(bytes <= 8_000 ? 'accept' : bytes > 8_400 ? 'refuse' : 'either');
  return all(...verdicts);
}

function sendVerdict(input: { message: string; clientMessageId?: string; metadata?: Record<string, unknown> }): Verdict {
  return all(
    isText(input.message) ? 'accept' : 'refuse',
    input.message.trim() === '' ? 'refuse' : 'accept',
    input.message.length <= 32_000 ? 'accept' : 'refuse',
    input.clientMessageId === undefined
      ? 'accept'
      : all(isText(input.clientMessageId) ? 'accept' : 'refuse', withinLength(input.clientMessageId, 1, 255)),
    input.metadata === undefined ? 'accept' : metadataVerdict(input.metadata),
  );
}

/** The answer is not a failure of the server (the property's first half). */
function serverFailure(answer: Answer): string | null {
  if (answer.status >= 500 || answer.text.includes('INTERNAL_SERVER_ERROR')) return `HTTP ${answer.status} ${answer.text.slice(0, 400)}`;
  if (RAW_DATABASE_TEXT.test(answer.text)) return `database text in the answer: ${answer.text.slice(0, 400)}`;
  return null;
}

/** Runs `property` with the file's settings: a fixed seed, `numRuns` runs, the counterexample shown. */
async function check<T>(seed: number, numRuns: number, property: fc.IAsyncProperty<T>): Promise<void> {
  await fc.assert(property, { seed, numRuns, verbose: 1 });
}

const shown = (value: unknown) =>
  JSON.stringify(value, (_key, inner) =>
    typeof inner === 'string' && inner.length > 200 ? `${inner.slice(0, 60)}…(${inner.length} chars)` : inner,
  );

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

describe('fuzzing', () => {
  const SEND_SEED = fuzzSeed(7_001);
  it(`sendMessage with arbitrary message, clientMessageId and metadata: stored exactly or refused with nothing stored (150 runs, seed ${SEND_SEED})`, async () => {
    const before = await rowsChecksum(server.db, bob);
    await check(
      SEND_SEED,
      150,
      fc.asyncProperty(
        messageArb,
        fc.option(
          fc.oneof(
            { weight: 8, arbitrary: text(40, 1) },
            { weight: 1, arbitrary: text(260, 250) },
            { weight: 1, arbitrary: fc.constant('') },
          ),
          { nil: undefined },
        ),
        fc.option(metadataArb, { nil: undefined }),
        async (message, clientMessageId, metadata) => {
          const user = uniqueUser('fuzz');
          const input = { message, clientMessageId, metadata };
          const verdict = sendVerdict(input);
          const answer = await gql<SendResult>(server, user, SEND, { input });
          const failure = serverFailure(answer);
          if (failure) throw new Error(`${shown(input)} -> ${failure}`);
          const payload = answer.body?.data?.sendMessage;
          const codes = (answer.body?.errors ?? []).map((error) => error.extensions?.code);
          if (payload) {
            if (verdict === 'refuse') throw new Error(`accepted what the contract refuses: ${shown(input)}`);
            const stored = await server.db.query('select content, client_message_id from message where id = $1', [payload.userMessage.id]);
            // The server trims a message before storing it (surrounding whitespace only).
            expect(stored.rows, shown(input)).toEqual([{ content: message.trim(), client_message_id: clientMessageId ?? null }]);
            const conversation = await server.db.query('select metadata from conversation where id = $1', [payload.conversation.id]);
            expect(conversation.rows[0].metadata, shown(input)).toEqual(
              metadata === undefined ? null : JSON.parse(JSON.stringify(metadata)),
            );
          } else {
            if (verdict === 'accept') throw new Error(`refused what the contract accepts: ${shown(input)} -> ${answer.text.slice(0, 400)}`);
            if (codes[0] !== 'BAD_USER_INPUT')
              throw new Error(`refused with ${codes.join(', ') || `HTTP ${answer.status}`}, not BAD_USER_INPUT: ${shown(input)}`);
            expect(await countRows(server.db, user), shown(input)).toEqual({ conversation: 0, message: 0, tool_call: 0, task: 0 });
          }
        },
      ),
    );
    expect(await rowsChecksum(server.db, bob), "bob's rows changed").toEqual(before);
  });

  const CURSOR_SEED = fuzzSeed(7_002);
  it(`every connection with arbitrary cursors: the viewer's own rows or BAD_USER_INPUT, never a 500 (200 runs, seed ${CURSOR_SEED})`, async () => {
    const before = await rowsChecksum(server.db, bob);
    const user = uniqueUser('cursors');
    const started = await gql<SendResult>(server, user, SEND, { input: { message: 'add a task to buy bread' } });
    const conversationId = defined(started.body?.data, 'the data of the first turn').sendMessage.conversation.id;
    const own = new Set(
      (
        await server.db.query(
          'select id from conversation where user_id = $1 union all select id from message where user_id = $1 union all select id from tool_call where user_id = $1 union all select id from task where user_id = $1',
          [user],
        )
      ).rows.map((row) => row.id as string),
    );

    const targets = [
      'query ($c: String) { conversations(first: 5, after: $c) { edges { node { id } } } }',
      'query ($c: String) { conversations(last: 5, before: $c) { edges { node { id } } } }',
      'query ($c: String) { tasks(first: 5, after: $c) { edges { node { id } } } }',
      'query ($id: ID!, $c: String) { conversation(id: $id) { messages(first: 5, after: $c) { edges { node { id } } } } }',
      'query ($id: ID!, $c: String) { conversation(id: $id) { messages(last: 5, before: $c) { edges { node { id } } } } }',
      'query ($id: ID!, $c: String) { conversation(id: $id) { toolCalls(first: 5, after: $c) { edges { node { id } } } } }',
    ];
    const keyPart = fc.oneof(
      fc.integer(),
      fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
      fc.double(),
      fc.uuid(),
      text(20),
      fc.date({ noInvalidDate: false }).map((date) => (Number.isNaN(date.getTime()) ? 'Invalid Date' : date.toISOString())),
      fc.constantFrom(2 ** 31, -(2 ** 31) - 1, 2 ** 53, '-010000-01-01T00:00:00.000Z', "' or 1=1 --", null, true),
    );
    const valid = Object.values(await ownCursors(server, user, conversationId));
    const cursor = fc.oneof(
      fc.constantFrom(...valid),
      fc.tuple(fc.constantFrom(...valid), fc.nat(40), text(3)).map(([base, at, inserted]) => base.slice(0, at) + inserted + base.slice(at)),
      fc.tuple(fc.constantFrom(...valid), fc.nat(40)).map(([base, at]) => base.slice(0, at)),
      text(60),
      fc.base64String({ maxLength: 60 }),
      fc
        .tuple(fc.constantFrom('conversation', 'message', 'toolCall', 'task', 'user', ''), fc.array(keyPart, { maxLength: 3 }))
        .map(([kind, key]) => Buffer.from(JSON.stringify([kind, ...key])).toString('base64url')),
    );
    await check(
      CURSOR_SEED,
      200,
      fc.asyncProperty(fc.constantFrom(...targets), cursor, async (query, c) => {
        const answer = await gql(server, user, query, { id: conversationId, c });
        const failure = serverFailure(answer);
        if (failure) throw new Error(`${query} with ${shown(c)} -> ${failure}`);
        const codes = (answer.body?.errors ?? []).map((error) => error.extensions?.code);
        if (codes.some((code) => code !== 'BAD_USER_INPUT')) throw new Error(`${query} with ${shown(c)} -> ${answer.text.slice(0, 400)}`);
        const ids = [...answer.text.matchAll(/"id":"([^"]+)"/g)].map((match) => defined(match[1], 'the id in the match'));
        const foreign = ids.filter((id) => !own.has(id));
        if (foreign.length > 0) throw new Error(`rows not the viewer's: ${foreign.join(', ')} for ${shown(c)}`);
      }),
    );
    expect(await rowsChecksum(server.db, bob), "bob's rows changed").toEqual(before);
  });

  const TOKEN_SEED = fuzzSeed(7_003);
  it(`tokens with arbitrary sub, exp, iat and nbf, signed with the right secret: the sub exactly, or UNAUTHENTICATED (300 runs, seed ${TOKEN_SEED})`, async () => {
    const before = await rowsChecksum(server.db, bob);
    /** A time claim: seconds from now (resolved when signing), or a value of any other kind. */
    type TimeClaim = { offset: number } | { raw: unknown } | undefined;
    /** Mostly a valid time (`valid` seconds from now), else any time, none, or a value of another kind. */
    const timeClaim = (valid: fc.Arbitrary<number>): fc.Arbitrary<TimeClaim> =>
      fc.oneof(
        { weight: 6, arbitrary: valid.map((offset) => ({ offset })) },
        {
          weight: 2,
          arbitrary: fc
            .oneof(fc.integer({ min: -100_000, max: 100_000 }), fc.double({ min: -1e6, max: 1e6, noNaN: true }))
            .map((offset) => ({ offset })),
        },
        { weight: 1, arbitrary: fc.constant(undefined) },
        {
          weight: 1,
          arbitrary: fc
            .oneof(
              fc.string(),
              fc.constant(null),
              fc.boolean(),
              fc.constant(1e308),
              fc.constant(-1e308),
              fc.array(fc.integer(), { maxLength: 2 }),
            )
            .map((raw) => ({ raw })),
        },
      );
    const future = timeClaim(fc.integer({ min: 61, max: 10_000_000 }));
    const past = timeClaim(fc.integer({ min: -10_000_000, max: 19 }));
    const subArb = fc.oneof(
      { weight: 2, arbitrary: text(30) },
      { weight: 4, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 }) },
      { weight: 1, arbitrary: fc.integer({ min: 250, max: 260 }).map((n) => 's'.repeat(n)) },
      { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
      { weight: 1, arbitrary: fc.constant(undefined) },
    );
    const resolve = (claim: TimeClaim, now: number) =>
      claim === undefined ? undefined : 'offset' in claim ? now + claim.offset : claim.raw;
    /** A time claim that must not be in the future: exp = false, iat/nbf = true. */
    const timeVerdict = (claim: TimeClaim, kind: 'exp' | 'iat' | 'nbf'): Verdict => {
      if (claim === undefined) return kind === 'exp' ? 'refuse' : 'accept';
      if (!('offset' in claim)) {
        const raw = claim.raw;
        if (typeof raw !== 'number') return 'refuse';
        return kind === 'exp' ? (raw > 0 ? 'accept' : 'refuse') : raw > 0 ? 'refuse' : 'accept';
      }
      const offset = claim.offset;
      if (kind === 'exp') return offset > 60 ? 'accept' : offset < -60 ? 'refuse' : 'either';
      return offset < 20 ? 'accept' : offset > 40 ? 'refuse' : 'either';
    };
    // A C0 control character, DEL or a C1 control character: U+0000–U+001F, U+007F–U+009F.
    const isControl = (code: number): boolean => code <= 0x1f || (code >= 0x7f && code <= 0x9f);
    const hasControlCharacter = (text: string): boolean => [...text].some((char) => isControl(char.codePointAt(0) ?? 0));
    const subVerdict = (sub: unknown): Verdict =>
      typeof sub !== 'string'
        ? 'refuse'
        : all(sub.isWellFormed() ? 'accept' : 'refuse', hasControlCharacter(sub) ? 'refuse' : 'accept', withinLength(sub, 1, 255));

    await check(
      TOKEN_SEED,
      300,
      fc.asyncProperty(subArb, future, past, past, async (sub, exp, iat, nbf) => {
        const now = nowSeconds();
        const claims: Record<string, unknown> = {};
        for (const [name, value] of Object.entries({ sub, exp: resolve(exp, now), iat: resolve(iat, now), nbf: resolve(nbf, now) })) {
          if (value !== undefined) claims[name] = value;
        }
        const verdict = all(subVerdict(sub), timeVerdict(exp, 'exp'), timeVerdict(iat, 'iat'), timeVerdict(nbf, 'nbf'));
        const answer = await postGraphQL<ViewerData>(server, { query: '{ viewer { id } }' }, { token: await signClaims(claims) });
        const failure = serverFailure(answer);
        if (failure) throw new Error(`${shown(claims)} -> ${failure}`);
        const viewer = answer.body?.data?.viewer?.id;
        if (viewer !== undefined) {
          if (verdict === 'refuse') throw new Error(`accepted claims the contract refuses: ${shown(claims)} -> viewer ${shown(viewer)}`);
          if (viewer !== sub) throw new Error(`the viewer is ${shown(viewer)}, not the sub: ${shown(claims)}`);
        } else {
          if (verdict === 'accept')
            throw new Error(`refused claims the contract accepts: ${shown(claims)} -> ${answer.text.slice(0, 300)}`);
          const code = answer.body?.errors?.[0]?.extensions?.code;
          if (code !== 'UNAUTHENTICATED')
            throw new Error(`refused with ${String(code)}, not UNAUTHENTICATED: ${shown(claims)} -> ${answer.text.slice(0, 300)}`);
        }
      }),
    );
    expect(await rowsChecksum(server.db, bob), "bob's rows changed").toEqual(before);
  });

  const REST_SEED = fuzzSeed(7_004);
  it(`the REST route with arbitrary bodies and Idempotency-Keys: stored exactly or a 4xx with nothing stored (60 runs, seed ${REST_SEED})`, async () => {
    const before = await rowsChecksum(server.db, bob);
    const bodyArb = fc.oneof(
      { weight: 4, arbitrary: fc.record({ message: messageArb }) },
      { weight: 1, arbitrary: fc.record({ message: messageArb, conversation_id: fc.oneof(text(40), fc.uuid()) }) },
      { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3, stringUnit: jsonUnit }) },
    );
    // Header values are bytes: what fetch can send is visible ASCII (others are in text.test.ts).
    const keyArb = fc.option(
      fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 40 }).filter((key) => /^[\x21-\x7e]+$/.test(key)),
      { nil: undefined },
    );
    await check(
      REST_SEED,
      60,
      fc.asyncProperty(bodyArb, keyArb, async (body, key) => {
        const user = uniqueUser('rest');
        const answer = await postRest(server, user, body, { user, headers: key === undefined ? {} : { 'idempotency-key': key } });
        const failure = serverFailure(answer);
        if (failure) throw new Error(`${shown(body)} key ${shown(key)} -> ${failure}`);
        const message = (body as { message?: unknown } | null)?.message;
        if (answer.status === 200) {
          if (typeof message !== 'string' || !isText(message) || message.trim() === '') throw new Error(`accepted ${shown(body)}`);
          const stored = await server.db.query(`select content, client_message_id from message where user_id = $1 and role = 'user'`, [
            user,
          ]);
          expect(stored.rows, shown(body)).toEqual([{ content: message.trim(), client_message_id: key ?? null }]);
        } else {
          if (![400, 404, 413, 422].includes(answer.status))
            throw new Error(`HTTP ${answer.status} for ${shown(body)}: ${answer.text.slice(0, 300)}`);
          if (
            typeof message === 'string' &&
            isText(message) &&
            message.trim() !== '' &&
            message.length <= 32_000 &&
            (body as Record<string, unknown>).conversation_id === undefined
          ) {
            throw new Error(`refused a valid body ${shown(body)} key ${shown(key)}: HTTP ${answer.status} ${answer.text.slice(0, 300)}`);
          }
          expect(await countRows(server.db, user), shown(body)).toEqual({ conversation: 0, message: 0, tool_call: 0, task: 0 });
        }
      }),
    );
    expect(await rowsChecksum(server.db, bob), "bob's rows changed").toEqual(before);
  });

  const MCP_SEED = fuzzSeed(7_005);
  it(`/mcp add_task with arbitrary title and description: stored exactly (trimmed) or a clean tool error (100 runs, seed ${MCP_SEED})`, async () => {
    const before = await rowsChecksum(server.db, bob);
    await check(
      MCP_SEED,
      100,
      fc.asyncProperty(
        fc.oneof(
          { weight: 5, arbitrary: text(40) },
          { weight: 1, arbitrary: fc.integer({ min: 495, max: 505 }).map((n) => 't'.repeat(n)) },
        ),
        fc.option(text(40), { nil: undefined }),
        async (title, description) => {
          const user = uniqueUser('mcp');
          const args = description === undefined ? { title } : { title, description };
          const answer = await callMcpTool(server, 'add_task', args, { user });
          const failure = serverFailure(answer);
          if (failure) throw new Error(`${shown(args)} -> ${failure}`);
          if (answer.status !== 200 || !answer.body?.result)
            throw new Error(`${shown(args)} -> not a tool result: HTTP ${answer.status} ${answer.text.slice(0, 300)}`);
          const verdict = all(
            isText(title) ? 'accept' : 'refuse',
            description === undefined || isText(description) ? 'accept' : 'refuse',
            title.trim().length >= 1 && title.trim().length <= 500 ? 'accept' : 'refuse',
          );
          const rows = (await server.db.query('select title, description from task where user_id = $1', [user])).rows;
          if (answer.body.result.isError) {
            if (verdict === 'accept') throw new Error(`refused ${shown(args)}: ${answer.text.slice(0, 300)}`);
            expect(rows, shown(args)).toEqual([]);
          } else {
            if (verdict === 'refuse') throw new Error(`accepted ${shown(args)}`);
            expect(rows, shown(args)).toEqual([{ title: title.trim(), description: description?.trim() || null }]);
          }
        },
      ),
    );
    expect(await rowsChecksum(server.db, bob), "bob's rows changed").toEqual(before);
  });
});
