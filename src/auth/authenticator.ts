/**
 * Bearer tokens: verified JWTs whose `sub` is the user id. HS256 with `JWT_SECRET`, or keys from
 * `JWT_JWKS_URL`. Outside production and without JWT settings, a secret generated once is kept
 * in `DATA_DIR/jwt-secret`, so that dev tokens survive restarts.
 *
 * Step 1 of the turn for every transport (GraphQL, REST, `/mcp`): each hands over the
 * `Authorization` header and gets a `Viewer` or UNAUTHENTICATED. Nothing here knows HTTP.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createRemoteJWKSet, type JWTPayload, type JWTVerifyGetKey, jwtVerify, SignJWT } from 'jose';
import type { Config } from '../config.js';
import { unauthenticated } from '../errors.js';
import { hasControl, textProblem } from '../text.js';
import type { Viewer } from './viewer.js';

export type Authenticator = {
  /** The viewer of a request from its `Authorization` header; throws UNAUTHENTICATED. */
  authenticate(header: string | undefined): Promise<Viewer>;
  /** Signs a token for `userId` when this server holds the secret (not with JWKS). */
  sign?(userId: string, expiresIn?: string): Promise<string>;
  /** True when the secret is the dev secret this server generated itself (no JWT settings). */
  devSecret: boolean;
};

const DEV_SECRET_FILE = 'jwt-secret';
const USER_ID_MAX = 255;
/** Tokens verified recently, kept so that a client's every request does not pay for the signature again. */
const VERIFIED_MAX = 10_000;
/** How long a verified token is trusted without verifying it again (a key taken out of a JWKS counts after this). */
const VERIFIED_TTL_MS = 60_000;

/**
 * The secret to sign and verify HS256 tokens with: `JWT_SECRET`, else (outside production, and
 * without JWKS) the kept dev secret, generated on first use. Undefined with JWKS.
 */
export async function resolveSecret(config: Config): Promise<string | undefined> {
  if (config.jwt.secret) return config.jwt.secret;
  if (config.jwt.jwksUrl) return undefined;
  if (config.env === 'production') {
    throw new Error('NODE_ENV=production needs JWT_SECRET or JWT_JWKS_URL to verify bearer tokens; neither is set. Refusing to start.');
  }
  const file = path.resolve(config.dataDir, DEV_SECRET_FILE);
  if (existsSync(file)) return (await readFile(file, 'utf8')).trim();
  const secret = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64url');
  await mkdir(config.dataDir, { recursive: true });
  await writeFile(file, secret, { mode: 0o600 });
  return secret;
}

/** Builds the authenticator of `config` (see `resolveSecret` for where the key comes from). */
export async function createAuthenticator(config: Config): Promise<Authenticator> {
  const secret = await resolveSecret(config);
  const key: Uint8Array | JWTVerifyGetKey = secret ? new TextEncoder().encode(secret) : createRemoteJWKSet(new URL(jwksUrlOf(config)));
  const options = {
    issuer: config.jwt.issuer,
    audience: config.jwt.audience,
    algorithms: secret ? ['HS256'] : undefined,
    requiredClaims: config.jwt.requireExp ? ['exp'] : [],
    clockTolerance: config.jwt.clockToleranceS,
  };

  // Private: token (the exact string) -> its user, until the token expires or the TTL ends,
  // whichever comes first. Only verified tokens go in; the oldest go out first past the limit.
  const verified = new Map<string, { userId: string; until: number }>();

  return {
    async authenticate(header) {
      const token = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')?.[1];
      if (!token) throw unauthenticated('Missing bearer token: send "Authorization: Bearer <token>"');
      const known = verified.get(token);
      if (known && known.until > Date.now()) return { userId: known.userId };
      if (known) verified.delete(token);
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, key as Uint8Array, options));
      } catch (error) {
        throw unauthenticated(`Invalid bearer token: ${(error as Error).message}`);
      }
      // jose checks `nbf` against the clock but lets an `iat` from the future pass.
      if (typeof payload.iat === 'number' && payload.iat > Date.now() / 1000 + config.jwt.clockToleranceS) {
        throw unauthenticated('Invalid bearer token: "iat" claim is in the future');
      }
      const userId = userIdOf(payload.sub);
      const expires = typeof payload.exp === 'number' ? (payload.exp + config.jwt.clockToleranceS) * 1000 : Number.POSITIVE_INFINITY;
      if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value as string);
      verified.set(token, { userId, until: Math.min(expires, Date.now() + VERIFIED_TTL_MS) });
      return { userId };
    },
    devSecret: secret !== undefined && !config.jwt.secret,
    sign: secret
      ? (userId, expiresIn = '30d') => {
          const jwt = new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(userId).setIssuedAt().setExpirationTime(expiresIn);
          if (config.jwt.issuer) jwt.setIssuer(config.jwt.issuer);
          if (config.jwt.audience) jwt.setAudience(config.jwt.audience);
          return jwt.sign(new TextEncoder().encode(secret));
        }
      : undefined,
  };
}

/**
 * The user id a token's `sub` names: a non-blank string of at most 255 characters, well-formed
 * Unicode, without control characters. Anything else (an object, an array, `true`) is refused: a
 * claim is never used as a query value it was not checked to be.
 */
function userIdOf(sub: unknown): string {
  if (typeof sub !== 'string' || sub.trim() === '') throw unauthenticated('Invalid bearer token: "sub" must be a non-empty string');
  if (sub.length > USER_ID_MAX)
    throw unauthenticated(`Invalid bearer token: "sub" is ${sub.length} characters; at most ${USER_ID_MAX} are accepted`);
  const problem = textProblem(sub) ?? (hasControl(sub) ? 'holds a control character' : null);
  if (problem) throw unauthenticated(`Invalid bearer token: "sub" ${problem}`);
  return sub;
}

// Private: without a secret, `resolveSecret` has checked that a JWKS URL is set.
function jwksUrlOf(config: Config): string {
  if (!config.jwt.jwksUrl) throw new Error('JWT_JWKS_URL or JWT_SECRET is needed to verify bearer tokens');
  return config.jwt.jwksUrl;
}
