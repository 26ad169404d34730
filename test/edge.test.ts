/**
 * The HTTP edge, as browsers, GraphQL clients and careless operators meet it: CORS, CSRF with bearer
 * tokens, slow clients, operation and content types the server does not serve, field suggestions,
 * the dev token's reach, and settings production refuses.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuthenticator } from '../src/auth/authenticator.js';
import { loadConfig } from '../src/config.js';
import { defined } from './support/defined.js';
import { postGraphQL } from './support/http.js';
import { startTestServer, TEST_JWT_SECRET, type TestServer } from './support/server.js';
import { sleep } from './support/wait.js';

let server: TestServer;
let production: TestServer;
const ORIGIN = 'https://app.example.com';

beforeAll(async () => {
  server = await startTestServer({
    env: { CORS_ORIGINS: `${ORIGIN},http://localhost:5173`, HEADERS_TIMEOUT: '1000', REQUEST_TIMEOUT: '1500' },
  });
  production = await startTestServer({ env: { NODE_ENV: 'production' } });
});

afterAll(async () => {
  await server?.close();
  await production?.close();
});

type Body = { data?: Record<string, unknown> | null; errors?: { message: string; extensions: Record<string, unknown> }[] };

async function post(target: TestServer, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: Body }> {
  const answer = await postGraphQL(target, body as { query: string }, { user: 'alice', headers });
  return { status: answer.status, body: defined(answer.body, `a JSON answer, got: ${answer.text}`) as Body };
}

describe('CORS (CORS_ORIGINS)', () => {
  it('answers the preflight of a listed origin with 204 and the headers a GraphQL client sends', async () => {
    const response = await fetch(`${server.url}/graphql`, {
      method: 'OPTIONS',
      headers: { origin: ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
    });
    expect(response.status).toBe(204);
    expect(response.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(response.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('authorization');
    expect(response.headers.get('access-control-allow-methods')).toContain('POST');
  });

  it('lets the listed origin read the answer, and gives an unlisted origin no CORS headers at all', async () => {
    const allowed = await post(server, { query: '{ viewer { id } }' }, { origin: ORIGIN });
    expect(allowed.body.data).toEqual({ viewer: { id: 'alice' } });
    const listed = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { origin: ORIGIN, 'content-type': 'application/json', authorization: `Bearer ${await server.token('alice')}` },
      body: '{"query":"{ viewer { id } }"}',
    });
    expect(listed.headers.get('access-control-allow-origin')).toBe(ORIGIN);

    const preflight = await fetch(`${server.url}/graphql`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://evil.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('by default (CORS_ORIGINS unset) allows no origin, and still answers a preflight without an error', async () => {
    const response = await fetch(`${production.url}/graphql`, {
      method: 'OPTIONS',
      headers: { origin: ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' },
    });
    expect(response.status).toBe(204);
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('refuses `*` and malformed origins in the configuration, naming the variable', () => {
    expect(() => loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32), CORS_ORIGINS: '*' })).toThrow(/CORS_ORIGINS/);
    expect(() => loadConfig({ CORS_ORIGINS: 'https://app.example.com/path' })).toThrow(/CORS_ORIGINS.*no path/);
    expect(loadConfig({ CORS_ORIGINS: '*' }).corsOrigins).toBe('*');
  });
});

describe('CSRF prevention', () => {
  it('serves a GET query that carries a bearer token (urql and Apollo Client persisted GETs send no content type)', async () => {
    const query = encodeURIComponent('{ viewer { id } }');
    const response = await fetch(`${server.url}/graphql?query=${query}`, {
      headers: { authorization: `Bearer ${await server.token('alice')}` },
    });
    expect(response.status).toBe(200);
    expect(((await response.json()) as Body).data).toEqual({ viewer: { id: 'alice' } });
  });

  it('still refuses a simple request without a token or a preflight header (what a cross-site form could send)', async () => {
    const query = encodeURIComponent('{ viewer { id } }');
    const response = await fetch(`${server.url}/graphql?query=${query}`);
    expect(response.status).toBe(400);
    expect(await response.text()).toContain('CSRF');
  });
});

describe('operations and content the server does not serve', () => {
  it('answers a subscription sent as a plain request with 400 and says where it streams, before any resolver runs', async () => {
    server.resetQueries();
    const query = 'subscription { conversationEvents(conversationId: "01900000-0000-7000-8000-000000000000") { position } }';
    const { status, body } = await post(server, { query });
    expect(status).toBe(400);
    expect(body.errors?.[0]).toMatchObject({ extensions: { code: 'GRAPHQL_VALIDATION_FAILED', limit: 'operationType' } });
    expect(body.errors?.[0]?.message).toMatch(/WebSocket .* Server-Sent Events/);
    expect(server.queries).toEqual([]);
  });

  it('answers a body that is not JSON, or not a GraphQL request, with a 4xx and a JSON error', async () => {
    const auth = { authorization: `Bearer ${await server.token('alice')}` };
    const xml = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/xml' },
      body: '<query/>',
    });
    expect(xml.status).toBeGreaterThanOrEqual(400);
    expect(xml.status).toBeLessThan(500);
    const broken = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: '{"query": ',
    });
    expect(broken.status).toBe(400);
    expect(await broken.json()).toMatchObject({ error: { code: 'BAD_REQUEST' } });
    const latin1 = await fetch(`${server.url}/mcp`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json; charset=latin1', accept: 'application/json, text/event-stream' },
      body: '{}',
    });
    expect(latin1.status).toBe(415);
  });
});

describe('slow clients', () => {
  it('closes a connection whose headers do not arrive within HEADERS_TIMEOUT', async () => {
    const socket = connect(Number(new URL(server.url).port), '127.0.0.1');
    socket.write('POST /graphql HTTP/1.1\r\nHost: x\r\n'); // and never the rest
    const answer = await new Promise<string>((resolve) => {
      let received = '';
      socket.on('data', (chunk) => (received += chunk.toString()));
      socket.on('close', () => resolve(received));
    });
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
  });
});

describe('field suggestions', () => {
  it('are shown outside production and hidden in production, where they would map the schema', async () => {
    const query = { query: '{ viewr { id } }' };
    expect((await post(server, query)).body.errors?.[0]?.message).toMatch(/Did you mean "viewer"\?/);
    const hidden = await post(production, query);
    expect(hidden.status).toBe(400);
    expect(hidden.body.errors?.[0]?.message).toBe('Cannot query field "viewr" on type "Query".');
  });
});

describe('tokens', () => {
  const sign = (claims: Record<string, unknown>) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(TEST_JWT_SECRET));
  const now = () => Math.floor(Date.now() / 1000);
  const viewerOf = async (token: string) => {
    const response = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: '{"query":"{ viewer { id } }"}',
    });
    const body = (await response.json()) as Body;
    return (body.data?.viewer as { id: string } | undefined)?.id ?? body.errors?.[0]?.extensions.code;
  };

  it('requires exp, and refuses iat or nbf from the future beyond the clock tolerance', async () => {
    expect(await viewerOf(await sign({ sub: 'alice', exp: now() + 60 }))).toBe('alice');
    expect(await viewerOf(await sign({ sub: 'alice' }))).toBe('UNAUTHENTICATED');
    expect(await viewerOf(await sign({ sub: 'alice', exp: now() + 60, iat: now() + 10 * 365 * 86_400 }))).toBe('UNAUTHENTICATED');
    expect(await viewerOf(await sign({ sub: 'alice', exp: now() + 600, nbf: now() + 300 }))).toBe('UNAUTHENTICATED');
    expect(await viewerOf(await sign({ sub: 'alice', exp: now() + 60, iat: now() + 5 }))).toBe('alice');
  });

  it('refuses a sub that is not a plain user id: objects, arrays, booleans, control characters, lone surrogates', async () => {
    for (const sub of [
      { $ne: 'nobody' },
      ['alice', 'bob'],
      { $in: ['alice'] },
      { $like: '%' },
      true,
      1,
      null,
      '',
      ' ',
      'a\u0000b',
      'tab\tbed',
      'col\ud800',
      'col\udbff',
      'x'.repeat(256),
    ]) {
      expect(await viewerOf(await sign({ sub, exp: now() + 60 })), JSON.stringify(sub)).toBe('UNAUTHENTICATED');
    }
    expect(await viewerOf(await sign({ sub: 'col\ufffd', exp: now() + 60 }))).toBe('col\ufffd');
  });

  it('accepts tokens without exp when JWT_REQUIRE_EXP=false', async () => {
    const auth = await createAuthenticator(loadConfig({ JWT_SECRET: TEST_JWT_SECRET, JWT_REQUIRE_EXP: 'false' }));
    expect(await auth.authenticate(`Bearer ${await sign({ sub: 'alice' })}`)).toEqual({ userId: 'alice' });
  });

  it('refuses a token once it expires, though it was verified (and remembered) a moment before', async () => {
    const auth = await createAuthenticator(loadConfig({ JWT_SECRET: TEST_JWT_SECRET, JWT_CLOCK_TOLERANCE: '0' }));
    const expiresAt = now() + 2;
    const token = `Bearer ${await sign({ sub: 'brief', exp: expiresAt })}`;
    expect(await auth.authenticate(token)).toEqual({ userId: 'brief' });
    expect(await auth.authenticate(token)).toEqual({ userId: 'brief' });
    // About time passing: the token's own expiry.
    await sleep(Math.max(0, expiresAt * 1000 - Date.now()) + 50);
    await expect(auth.authenticate(token)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('in production, refuses to start with a JWT_SECRET shorter than 32 bytes', () => {
    expect(() => loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'abc' })).toThrow(
      /JWT_SECRET: in production it must be at least 32 bytes \(got 3\)/,
    );
    expect(loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32) }).jwt.secret).toHaveLength(32);
  });
});

describe('the dev token', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'stateless-chat-edge-'));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  const landingPage = async (target: TestServer) => (await fetch(`${target.url}/graphql`, { headers: { accept: 'text/html' } })).text();

  it('is put into the Sandbox page only with the generated dev secret, outside production, on loopback', async () => {
    const loopback = await startTestServer({ env: { JWT_SECRET: '', DATA_DIR: dataDir, HOST: '127.0.0.1' } });
    const everywhere = await startTestServer({ env: { JWT_SECRET: '', DATA_DIR: dataDir, HOST: '0.0.0.0' } });
    try {
      expect(loopback.app.devToken).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
      expect(await landingPage(loopback)).toContain(loopback.app.devToken);
      expect(everywhere.app.devToken).toBeUndefined();
      expect(await landingPage(everywhere)).not.toContain('Bearer ey');
    } finally {
      await loopback.close();
      await everywhere.close();
    }
    // A real JWT_SECRET: no dev token, even on loopback (the test server listens there).
    expect(server.app.devToken).toBeUndefined();
    expect(await landingPage(server)).not.toContain('Bearer ey');
  });

  it('is out of reach of another site’s name pointed at 127.0.0.1 (DNS rebinding): such a Host is refused with 403', async () => {
    const loopback = await startTestServer({ env: { JWT_SECRET: '', DATA_DIR: dataDir, HOST: '127.0.0.1' } });
    try {
      const port = new URL(loopback.url).port;
      const asked = (host: string, target: string) =>
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = request({ host: '127.0.0.1', port, path: target, headers: { host, accept: 'text/html' } }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => {
              body += chunk;
            });
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          });
          req.on('error', reject);
          req.end();
        });
      for (const target of ['/graphql', '/']) {
        const foreign = await asked(`rebound.example:${port}`, target);
        expect(foreign.status).toBe(403);
        expect(foreign.body).not.toContain(loopback.app.devToken);
        expect(JSON.parse(foreign.body)).toMatchObject({ error: { code: 'FORBIDDEN' } });
      }
      for (const host of [`localhost:${port}`, `127.0.0.1:${port}`]) {
        const own = await asked(host, '/graphql');
        expect(own.status).toBe(200);
        expect(own.body).toContain(loopback.app.devToken);
      }
    } finally {
      await loopback.close();
    }
  });
});
