/**
 * Every setting of the server, parsed once from the environment.
 *
 * This is the only module that reads `process.env`; everything else receives a `Config`.
 * Invalid values fail fast at start with the name of the variable and the value received.
 */
import { z } from 'zod';

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);
/** A limit where 0 turns it off. */
const limit = (fallback: number) => z.coerce.number().int().min(0).default(fallback);
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
  OPENAI_MAX_RETRIES: z.coerce.number().int().min(0).max(10).default(2),
  SYSTEM_PROMPT: optionalString,
  SYSTEM_PROMPT_FILE: optionalString,
  CONTEXT_TOKENS: positiveInt(32_000),
  MAX_TOOL_ROUNDS: positiveInt(8),
  TOOL_TIMEOUT: positiveInt(30_000),
  TOOL_RESULT_MAX_BYTES: positiveInt(16 * 1024),
  TURN_DEADLINE: positiveInt(120_000),
  MCP_CONFIG: optionalString,
  HISTORY_LIMIT: positiveInt(50),
  MAX_MESSAGE_CHARS: positiveInt(32_000),
  TURN_LEASE: positiveInt(60_000).describe('milliseconds a turn holds its conversation'),
  ENQUEUE_TIMEOUT: positiveInt(30_000).describe('milliseconds an ENQUEUE send waits for the running turn'),
  SHUTDOWN_GRACE: positiveInt(25_000).describe('milliseconds running turns get to finish on SIGTERM/SIGINT'),
  RATE_TURNS_PER_MINUTE: limit(30),
  RATE_CONVERSATIONS_PER_HOUR: limit(60),
  RATE_MCP_CALLS_PER_MINUTE: limit(120),
  QUOTA_TOKENS_PER_DAY: limit(1_000_000),
  QUOTA_TASKS: limit(1_000),
  MCP_BATCH_MAX: limit(10),
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
  openai: { apiKey?: string; baseUrl?: string; model: string; maxRetries: number };
  /** Replaces the default system prompt: the text itself, or a file to read it from. */
  systemPrompt: { text?: string; file?: string };
  /** Token budget of the context sent to the model (system prompt and new message always kept). */
  contextTokens: number;
  /** Limits of one turn: model/tool rounds, one tool call's time and result size, the whole turn's time. */
  limits: { maxToolRounds: number; toolTimeoutMs: number; toolResultMaxBytes: number; turnDeadlineMs: number };
  /** Which agent runs the turns: `openai` when an API key is set, else `offline`. */
  agent: 'openai' | 'offline';
  mcpConfigPath?: string;
  historyLimit: number;
  maxMessageChars: number;
  turnLeaseMs: number;
  enqueueTimeoutMs: number;
  /** On SIGTERM/SIGINT, how long running requests get to finish before they are cut. */
  shutdownGraceMs: number;
  /** Per-user rate limits and quotas, counted in PostgreSQL so they hold across instances; 0 turns one off. */
  rateLimits: RateLimits;
  /** JSON-RPC messages accepted in one `/mcp` POST (a batch); 0: no cap. */
  mcpBatchMax: number;
  /** Introspection and the Sandbox landing page; on outside production unless set. */
  introspection: boolean;
  logLevel: string;
};

/** Per-user limits (0 = off). Windows start at a user's first counted action and last their stated length. */
export type RateLimits = {
  /** Turns begun (replays and busy answers are not counted) per minute. */
  turnsPerMinute: number;
  /** Conversations created per hour. */
  conversationsPerHour: number;
  /** `tools/call` requests through `/mcp` per minute (the agent's own tool calls are bounded by the turn limit). */
  mcpCallsPerMinute: number;
  /** Model tokens per day: a turn is refused once the day's count has reached it. */
  tokensPerDay: number;
  /** Tasks a user may have at once. */
  tasks: number;
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
    openai: { apiKey: e.OPENAI_API_KEY, baseUrl: e.OPENAI_BASE_URL, model: e.OPENAI_MODEL, maxRetries: e.OPENAI_MAX_RETRIES },
    systemPrompt: { text: e.SYSTEM_PROMPT, file: e.SYSTEM_PROMPT_FILE },
    contextTokens: e.CONTEXT_TOKENS,
    limits: {
      maxToolRounds: e.MAX_TOOL_ROUNDS,
      toolTimeoutMs: e.TOOL_TIMEOUT,
      toolResultMaxBytes: e.TOOL_RESULT_MAX_BYTES,
      turnDeadlineMs: e.TURN_DEADLINE,
    },
    agent: e.AGENT ?? (e.OPENAI_API_KEY ? 'openai' : 'offline'),
    mcpConfigPath: e.MCP_CONFIG,
    historyLimit: e.HISTORY_LIMIT,
    maxMessageChars: e.MAX_MESSAGE_CHARS,
    turnLeaseMs: e.TURN_LEASE,
    enqueueTimeoutMs: e.ENQUEUE_TIMEOUT,
    shutdownGraceMs: e.SHUTDOWN_GRACE,
    rateLimits: {
      turnsPerMinute: e.RATE_TURNS_PER_MINUTE,
      conversationsPerHour: e.RATE_CONVERSATIONS_PER_HOUR,
      mcpCallsPerMinute: e.RATE_MCP_CALLS_PER_MINUTE,
      tokensPerDay: e.QUOTA_TOKENS_PER_DAY,
      tasks: e.QUOTA_TASKS,
    },
    mcpBatchMax: e.MCP_BATCH_MAX,
    introspection: e.INTROSPECTION ? e.INTROSPECTION === 'true' : e.NODE_ENV !== 'production',
    logLevel: e.LOG_LEVEL,
  };
}
