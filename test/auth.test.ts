/**
 * Tokens from an identity provider: with JWT_JWKS_URL (+ issuer and audience) the server verifies
 * RS256 tokens against the provider's published keys, and refuses everything else.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CryptoKey, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support/server.js';

let provider: Server;
let server: TestServer;
let privateKey: CryptoKey;

beforeAll(async () => {
  const pair = await generateKeyPair('RS256');
  privateKey = pair.privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'key-1', alg: 'RS256', use: 'sig' };
  provider = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => provider.listen(0, '127.0.0.1', resolve));
  const jwksUrl = `http://127.0.0.1:${(provider.address() as AddressInfo).port}/.well-known/jwks.json`;
  server = await startTestServer({
    env: { JWT_SECRET: '', JWT_JWKS_URL: jwksUrl, JWT_ISSUER: 'https://idp.example', JWT_AUDIENCE: 'stateless-chat' },
  });
});

afterAll(async () => {
  await server?.close();
  await new Promise((resolve) => provider?.close(resolve));
});

async function sign(claims: { sub?: string; iss?: string; aud?: string }, key: CryptoKey = privateKey) {
  const jwt = new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'key-1' }).setIssuedAt().setExpirationTime('5m');
  if (claims.sub) jwt.setSubject(claims.sub);
  if (claims.iss) jwt.setIssuer(claims.iss);
  if (claims.aud) jwt.setAudience(claims.aud);
  return jwt.sign(key);
}

type GraphQLBody = { data?: { viewer?: { id: string } } | null; errors: { extensions: { code: string } }[] };

async function viewer(token: string) {
  const response = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: '{ viewer { id } }' }),
  });
  const body = (await response.json()) as GraphQLBody;
  return body.data?.viewer?.id ?? body.errors[0].extensions.code;
}

describe('JWT_JWKS_URL', () => {
  it("accepts a token signed with the provider's key, for the right issuer and audience", async () => {
    expect(await viewer(await sign({ sub: 'ivy', iss: 'https://idp.example', aud: 'stateless-chat' }))).toBe('ivy');
  });

  it('refuses a wrong issuer, a wrong audience, a missing subject and a foreign key', async () => {
    const stranger = (await generateKeyPair('RS256')).privateKey;
    expect(await viewer(await sign({ sub: 'ivy', iss: 'https://evil.example', aud: 'stateless-chat' }))).toBe('UNAUTHENTICATED');
    expect(await viewer(await sign({ sub: 'ivy', iss: 'https://idp.example', aud: 'other-app' }))).toBe('UNAUTHENTICATED');
    expect(await viewer(await sign({ iss: 'https://idp.example', aud: 'stateless-chat' }))).toBe('UNAUTHENTICATED');
    expect(await viewer(await sign({ sub: 'ivy', iss: 'https://idp.example', aud: 'stateless-chat' }, stranger))).toBe('UNAUTHENTICATED');
  });

  it('signs no tokens itself', () => {
    expect(server.app.auth.sign).toBeUndefined();
  });
});
