/**
 * JWT_REQUIRE_EXP=false: for identity providers whose tokens carry no `exp`, a token without one
 * is accepted. Everything else about the claims still holds: an `exp` that is there must not be
 * past, and `sub` must still be usable text.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postGraphQL } from '../support/http.js';
import { nowSeconds, signClaims, type ViewerData } from '../support/security.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { uniqueUser } from '../support/users.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ env: { JWT_REQUIRE_EXP: 'false' } });
});

afterAll(async () => {
  await server?.close();
});

async function viewer(claims: Record<string, unknown>): Promise<string> {
  const answer = await postGraphQL<ViewerData>(server, { query: '{ viewer { id } }' }, { token: await signClaims(claims) });
  return answer.body?.data?.viewer?.id ?? String(answer.body?.errors?.[0]?.extensions?.code ?? `HTTP ${answer.status} ${answer.text}`);
}

describe('JWT_REQUIRE_EXP=false', () => {
  it('accepts a token without exp', async () => {
    const user = uniqueUser('forever');
    expect(await viewer({ sub: user, iat: nowSeconds() })).toBe(user);
  });

  it('still refuses an expired token, an iat far in the future and a sub that is not text', async () => {
    expect(await viewer({ sub: uniqueUser('old'), exp: nowSeconds() - 120 })).toBe('UNAUTHENTICATED');
    expect(await viewer({ sub: uniqueUser('early'), iat: nowSeconds() + 120 })).toBe('UNAUTHENTICATED');
    expect(await viewer({ sub: 'col\ud800' })).toBe('UNAUTHENTICATED');
    expect(await viewer({ sub: { $ne: 'nobody' } })).toBe('UNAUTHENTICATED');
  });
});
