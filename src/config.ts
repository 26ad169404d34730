/**
 * Every setting of the server, parsed once from the environment.
 *
 * This is the only module that reads `process.env`; everything else receives a `Config`.
 * Invalid values fail fast at start with the name of the variable and the value received.
 */
import { z } from 'zod';

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);
const optionalString = z
  .string()
  .optional()
  .transform((value) => (value === undefined || value.trim() === '' ? undefined : value));

const schema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  HOST: z.string().default('127.0.0.1'),
  DATABASE_URL: optionalString,
  DATA_DIR: z.string().default('.data'),
  JWT_SECRET: optionalString,
  JWT_JWKS_URL: optionalString.pipe(z.url().optional()),
  JWT_ISSUER: optionalString,
  JWT_AUDIENCE: optionalString,
  OPENAI_API_KEY: optionalString,
  OPENAI_BASE_URL: optionalString.pipe(z.url().optional()),
  OPENAI_MODEL: z.string().default('gpt-4o-mini'),
  AGENT: z.enum(['openai', 'offline']).optional(),
  MCP_CONFIG: optionalString,
  HISTORY_LIMIT: positiveInt(50),
  MAX_MESSAGE_CHARS: positiveInt(32_000),
  TURN_LEASE: positiveInt(60_000).describe('milliseconds a turn holds its conversation'),
  ENQUEUE_TIMEOUT: positiveInt(30_000).describe('milliseconds an ENQUEUE send waits for the running turn'),
  INTROSPECTION: z.enum(['true', 'false']).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type Config = {
  env: 'development' | 'production' | 'test';
  port: number;
  host: string;
  /** Unset: an embedded PostgreSQL under `dataDir/postgres`. */
  databaseUrl?: string;
  dataDir: string;
  jwt: { secret?: string; jwksUrl?: string; issuer?: string; audience?: string };
  openai: { apiKey?: string; baseUrl?: string; model: string };
  /** Which agent runs the turns: `openai` when an API key is set, else `offline`. */
  agent: 'openai' | 'offline';
  mcpConfigPath?: string;
  historyLimit: number;
  maxMessageChars: number;
  turnLeaseMs: number;
  enqueueTimeoutMs: number;
  /** Introspection and the Sandbox landing page; on outside production unless set. */
  introspection: boolean;
  logLevel: string;
};

/** Parses the environment (default: `process.env`) into a `Config`, or throws naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues
      .map((issue) => `  ${issue.path.join('.')}: ${issue.message} (got ${JSON.stringify(env[String(issue.path[0])])})`)
      .join('\n');
    throw new Error(`Invalid configuration:\n${problems}`);
  }
  const e = parsed.data;
  return {
    env: e.NODE_ENV,
    port: e.PORT,
    host: e.HOST,
    databaseUrl: e.DATABASE_URL,
    dataDir: e.DATA_DIR,
    jwt: { secret: e.JWT_SECRET, jwksUrl: e.JWT_JWKS_URL, issuer: e.JWT_ISSUER, audience: e.JWT_AUDIENCE },
    openai: { apiKey: e.OPENAI_API_KEY, baseUrl: e.OPENAI_BASE_URL, model: e.OPENAI_MODEL },
    agent: e.AGENT ?? (e.OPENAI_API_KEY ? 'openai' : 'offline'),
    mcpConfigPath: e.MCP_CONFIG,
    historyLimit: e.HISTORY_LIMIT,
    maxMessageChars: e.MAX_MESSAGE_CHARS,
    turnLeaseMs: e.TURN_LEASE,
    enqueueTimeoutMs: e.ENQUEUE_TIMEOUT,
    introspection: e.INTROSPECTION ? e.INTROSPECTION === 'true' : e.NODE_ENV !== 'production',
    logLevel: e.LOG_LEVEL,
  };
}
