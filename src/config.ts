/**
 * Every setting of the server, parsed once from the environment.
 *
 * This is the only module that reads `process.env`; everything else receives a `Config`.
 * Invalid values fail fast at start with the name of the variable and the value received.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { DURATION_FORMAT, parseDuration } from './duration.js';

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);
/** A limit where 0 turns it off. */
const limit = (fallback: number) => z.coerce.number().int().min(0).default(fallback);
/** A snippet marker: 1 to 32 characters, no double quote (it is quoted in ts_headline's options) and no control character. */
const marker = (fallback: string) =>
  z
    .string()
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
    .regex(/^[^"\u0000-\u001f\u007f-\u009f]{1,32}$/, 'must be 1 to 32 characters, without a double quote or control character')
    .default(fallback);
/** `DRAIN_WINDOW` in production when unset: a few health checks of a load balancer (every 1 to 2 s). */
const DRAIN_WINDOW_PRODUCTION_MS = 5_000;
/** The longest delay a Node.js timer keeps. */
const TIMER_MAX_MS = 2 ** 31 - 1;
/** A duration (`30d`, `12h`, `15m`, `90s`; `0` = never/off), in milliseconds. */
const duration = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((value, context) => {
      const ms = parseDuration(value);
      if (ms === null) {
        context.addIssue({ code: 'custom', message: `must be ${DURATION_FORMAT}` });
        return z.NEVER;
      }
      return ms;
    });
const optionalString = z
  .string()
  .optional()
  .transform((value) => (value === undefined || value.trim() === '' ? undefined : value));

const schema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  HOST: z.string().default('127.0.0.1'),
  DATABASE_URL: optionalString,
  LISTEN_DATABASE_URL: optionalString.describe(
    'the database for the one LISTEN connection (default DATABASE_URL); set it when DATABASE_URL goes through a transaction-pooling proxy',
  ),
  DATABASE_POOLED: z
    .enum(['off', 'transaction'])
    .default('off')
    .describe(
      'transaction: DATABASE_URL goes through a transaction pooler (PgBouncer pool_mode=transaction): no session state is relied on through it (no startup options, no named prepared statements unless DATABASE_PREPARE=on), and without LISTEN_DATABASE_URL the server polls instead of listening',
    ),
  DATABASE_PREPARE: z
    .enum(['on', 'off'])
    .optional()
    .describe(
      'named prepared statements on the hot path; default on, off when DATABASE_POOLED=transaction (PgBouncer 1.21+ with max_prepared_statements > 0 supports them: set on)',
    ),
  EVENT_POLL_INTERVAL: positiveInt(500).describe(
    "ms between reads of the streamed conversations' events when there is no LISTEN session (DATABASE_POOLED=transaction without LISTEN_DATABASE_URL)",
  ),
  STREAM_BACKLOG_MAX: positiveInt(1_048_576).describe(
    'bytes a subscriber may leave unread in its connection before it is dropped (SLOW_CONSUMER)',
  ),
  DATA_DIR: z.string().default('.data'),
  JWT_SECRET: optionalString,
  JWT_JWKS_URL: optionalString.pipe(z.url().optional()),
  JWT_ISSUER: optionalString,
  JWT_AUDIENCE: optionalString,
  OPENAI_API_KEY: optionalString,
  OPENAI_BASE_URL: optionalString.pipe(z.url().optional()),
  OPENAI_MODEL: z.string().default('gpt-4o-mini'),
  TITLE_MODEL: optionalString,
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
  TURN_LEASE: positiveInt(15_000).describe('milliseconds a turn holds its conversation; renewed every third of it while the turn runs'),
  ENQUEUE_TIMEOUT: positiveInt(30_000).describe('milliseconds an ENQUEUE send waits for the running turn'),
  SHUTDOWN_GRACE: positiveInt(25_000).describe('milliseconds running turns get to finish on SIGTERM/SIGINT'),
  DRAIN_WINDOW: z.coerce
    .number()
    .int()
    .min(0)
    .max(TIMER_MAX_MS)
    .optional()
    .describe('milliseconds a stopping server keeps serving with /readyz at 503 before it stops taking connections'),
  RATE_TURNS_PER_MINUTE: limit(30),
  RATE_CONVERSATIONS_PER_HOUR: limit(60),
  RATE_MCP_CALLS_PER_MINUTE: limit(120),
  QUOTA_TOKENS_PER_DAY: limit(1_000_000),
  QUOTA_TASKS: limit(1_000),
  MCP_BATCH_MAX: limit(10),
  INTROSPECTION: z.enum(['true', 'false']).optional(),
  CHAT_PAGE: z.enum(['on', 'off']).optional(),
  JWT_REQUIRE_EXP: z.enum(['true', 'false']).default('true'),
  JWT_CLOCK_TOLERANCE: z.coerce.number().int().min(0).max(300).default(30),
  GRAPHQL_MAX_TOKENS: positiveInt(2_000),
  GRAPHQL_MAX_DEPTH: positiveInt(10),
  GRAPHQL_MAX_ALIASES: z.coerce.number().int().min(0).default(30),
  GRAPHQL_MAX_DIRECTIVES: z.coerce.number().int().min(0).default(20),
  GRAPHQL_MAX_COST: positiveInt(50_000),
  METADATA_MAX_BYTES: positiveInt(8 * 1024),
  SEARCH_LANGUAGE: z
    .string()
    .regex(/^[a-z][a-z0-9_]{0,62}$/, 'must be the name of a PostgreSQL text search configuration, such as simple or english')
    .default('simple'),
  SEARCH_HIGHLIGHT_START: marker('<mark>'),
  SEARCH_HIGHLIGHT_STOP: marker('</mark>'),
  CORS_ORIGINS: optionalString,
  HEADERS_TIMEOUT: positiveInt(10_000),
  REQUEST_TIMEOUT: positiveInt(30_000),
  CONVERSATION_TTL: duration('30d').describe('inactivity after which an active conversation expires'),
  ARCHIVE_AFTER: duration('90d').describe('inactivity after which a conversation is archived'),
  SWEEP_INTERVAL: duration('0')
    // Node's timers wait at most 2^31 - 1 ms (24.8 days); past it they fire at once.
    .refine((ms) => ms <= TIMER_MAX_MS, 'must be at most 24d (a timer waits no longer)')
    .describe('how often the server sweeps by itself'),
  SWEEP_BATCH: positiveInt(500),
  SUBSCRIPTIONS_PER_CONNECTION: positiveInt(20).describe('subscriptions one WebSocket connection may hold at once'),
  SUBSCRIPTIONS_PER_USER: positiveInt(100).describe('subscriptions one user may hold at once on this instance, every connection counted'),
  SUBSCRIPTION_HEARTBEAT: positiveInt(12_000).describe(
    'milliseconds between WebSocket pings (a connection that has not answered by the next one is cut) and SSE keep-alive comments',
  ),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LOG_FORMAT: z
    .enum(['json', 'pretty'])
    .default('json')
    .describe('json: one JSON object a line; pretty: coloured lines for people (pino-pretty)'),
  LOG_USER_IDS: z.enum(['on', 'off']).default('off').describe('off: user ids in logs are hashed (a SHA-256 prefix); on: as they are'),
  METRICS: z
    .enum(['on', 'off'])
    .optional()
    .describe('GET /metrics in the Prometheus text format; unset: on, but in production only with METRICS_PORT or METRICS_TOKEN'),
  METRICS_TOKEN: optionalString.describe('when set, GET /metrics needs `Authorization: Bearer <token>`'),
  METRICS_PORT: z.coerce
    .number()
    .int()
    .min(0)
    .max(65535)
    .optional()
    .describe('serve GET /metrics on this port of HOST, its own listener, instead of the API port (0: any free port)'),
  OTEL_EXPORTER_OTLP_ENDPOINT: optionalString
    .pipe(z.url({ protocol: /^https?$/ }).optional())
    .describe('traces are sent by OTLP/HTTP (JSON) to <endpoint>/v1/traces; unset: no tracing'),
  OTEL_SERVICE_NAME: z.string().default('stateless-chat'),
});

export type Config = {
  env: 'development' | 'production' | 'test';
  port: number;
  host: string;
  /** Unset: an embedded PostgreSQL under `dataDir/postgres`. */
  databaseUrl?: string;
  /** The listening connection's database (LISTEN needs a session, which a transaction pooler does not keep); default: the database's. */
  listenDatabaseUrl?: string;
  /** DATABASE_URL goes through a transaction pooler: no session state through it. */
  databasePooled: boolean;
  /** Named prepared statements on the hot path (DATABASE_PREPARE; default: not when pooled). */
  databasePrepare: boolean;
  /** ms between event polls when nothing listens (pooled, no LISTEN_DATABASE_URL). */
  eventPollMs: number;
  /** Bytes a subscriber's connection may hold unsent before the subscriber is dropped with SLOW_CONSUMER. */
  streamBacklogMax: number;
  dataDir: string;
  jwt: {
    secret?: string;
    jwksUrl?: string;
    issuer?: string;
    audience?: string;
    /** Refuse tokens without `exp` (default true). */
    requireExp: boolean;
    /** Seconds of clock skew allowed for `exp`, `nbf` and `iat`. */
    clockToleranceS: number;
  };
  openai: {
    apiKey?: string;
    baseUrl?: string;
    model: string;
    maxRetries: number;
    /** The model that titles a conversation after its first turn (`TITLE_MODEL`, default `model`); null (`off`): titles come from first messages. */
    titleModel: string | null;
    /** The system prompt: `SYSTEM_PROMPT`, else the content of `SYSTEM_PROMPT_FILE` (read once, at load), else `DEFAULT_SYSTEM_PROMPT`. */
    systemPrompt: string;
  };
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
  /** On SIGTERM/SIGINT, how long running requests get to finish before they are cut (counted from the end of the drain window). */
  shutdownGraceMs: number;
  /**
   * On SIGTERM/SIGINT, how long the server goes on serving, `/readyz` answering 503, before it
   * stops taking connections: time for a load balancer to see it and send elsewhere
   * (`DRAIN_WINDOW`; default 5,000 in production, 0 otherwise, where nothing balances).
   */
  drainWindowMs: number;
  /** Limits every GraphQL document must keep, checked before validation and execution. */
  graphql: { maxTokens: number; maxDepth: number; maxAliases: number; maxDirectives: number; maxCost: number };
  /** Largest `metadata` object accepted, in bytes of its JSON. */
  metadataMaxBytes: number;
  /** Full-text search: how text is split and stemmed, and how snippets mark the words found. */
  search: SearchSettings;
  /** Origins browsers may call from (CORS): none by default, a list, or `*` (not in production). */
  corsOrigins: string[] | '*';
  /** HTTP server timeouts: all headers, and the whole request body, must arrive within these. */
  http: { headersTimeoutMs: number; requestTimeoutMs: number };
  /** Per-user rate limits and quotas, counted in PostgreSQL so they hold across instances; 0 turns one off. */
  rateLimits: RateLimits;
  /** JSON-RPC messages accepted in one `/mcp` POST (a batch); 0: no cap. */
  mcpBatchMax: number;
  /** Introspection and the Sandbox landing page; on outside production unless set. */
  introspection: boolean;
  /** The chat page at `GET /` (`CHAT_PAGE`: `on` | `off`); on outside production unless set. */
  chatPage: boolean;
  /** The retention policy the sweeper applies (`chat/sweeper.ts`). */
  retention: Retention;
  /** Subscriptions over WebSocket and Server-Sent Events (`http/subscriptions.ts`). */
  subscriptions: SubscriptionSettings;
  logLevel: string;
  /** `json` (default): one JSON object a line; `pretty`: for people, through pino-pretty. */
  logFormat: 'json' | 'pretty';
  /** Log user ids as they are (`LOG_USER_IDS=on`); by default a SHA-256 prefix of each (`userRef` in `log.ts`). */
  logUserIds: boolean;
  /** `GET /metrics` (`METRICS`), behind a bearer token when `METRICS_TOKEN` is set; on its own port with `METRICS_PORT`. */
  metrics: MetricsSettings;
  /** OpenTelemetry traces (`src/tracing.ts`): off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set. */
  tracing: TracingSettings;
};

/**
 * Where traces go. The exporter itself also applies the other standard variables
 * (`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_EXPORTER_OTLP_COMPRESSION`...).
 */
export type MetricsSettings = {
  enabled: boolean;
  token?: string;
  /** Its own listener on this port (of `HOST`), and none on the API's port. */
  port?: number;
  /**
   * Off only because `METRICS` is unset in production with neither `METRICS_PORT` nor
   * `METRICS_TOKEN`: the API's port faces clients, and the metrics name operations, tools and
   * models. The server says so when it starts.
   */
  offInProduction: boolean;
};

export type TracingSettings = {
  /** The OTLP/HTTP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`, such as `http://collector:4318`); unset: no tracing. */
  endpoint?: string;
  /** The `service.name` of every span (`OTEL_SERVICE_NAME`, default `stateless-chat`). */
  serviceName: string;
};

/** Caps and heartbeats of the subscriptions, per instance (a client reconnecting elsewhere counts there). */
export type SubscriptionSettings = {
  /** Subscriptions one WebSocket connection may hold at once (`SUBSCRIPTIONS_PER_CONNECTION`, default 20); an SSE request holds one. */
  perConnection: number;
  /** Subscriptions one user may hold at once on this instance, over every connection (`SUBSCRIPTIONS_PER_USER`, default 100). */
  perUser: number;
  /**
   * Milliseconds between the WebSocket ping frames (`SUBSCRIPTION_HEARTBEAT`, default 12,000); a connection
   * that has not answered one with a pong within as long is cut. SSE streams get a comment line as often.
   */
  heartbeatMs: number;
};

/**
 * `language` is a PostgreSQL text search configuration (`simple` by default: words as they are,
 * for every language; `english`, `french`... stem and drop stop words). Messages are indexed with
 * the one in force when they are stored, and queries are read with it: see the README.
 */
export type SearchSettings = { language: string; highlightStart: string; highlightStop: string };
/** The retention policy, in milliseconds of inactivity (0 = never). */
export type Retention = {
  /** An ACTIVE conversation expires after this (`CONVERSATION_TTL`, default 30 days). */
  ttlMs: number;
  /** An ACTIVE or EXPIRED conversation is archived after this (`ARCHIVE_AFTER`, default 90 days). */
  archiveAfterMs: number;
  /** How often the server sweeps by itself (`SWEEP_INTERVAL`, default 0: never; `npm run cli -- sweep` does). */
  sweepIntervalMs: number;
  /** Conversations changed per statement (`SWEEP_BATCH`, default 500). */
  batchSize: number;
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
  const problems = productionProblems(e);
  if (problems.length > 0) throw new Error(`Invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  return {
    env: e.NODE_ENV,
    port: e.PORT,
    host: e.HOST,
    databaseUrl: e.DATABASE_URL,
    listenDatabaseUrl: e.LISTEN_DATABASE_URL,
    databasePooled: e.DATABASE_POOLED === 'transaction',
    eventPollMs: e.EVENT_POLL_INTERVAL,
    databasePrepare: e.DATABASE_PREPARE ? e.DATABASE_PREPARE === 'on' : e.DATABASE_POOLED !== 'transaction',
    streamBacklogMax: e.STREAM_BACKLOG_MAX,
    dataDir: e.DATA_DIR,
    jwt: {
      secret: e.JWT_SECRET,
      jwksUrl: e.JWT_JWKS_URL,
      issuer: e.JWT_ISSUER,
      audience: e.JWT_AUDIENCE,
      requireExp: e.JWT_REQUIRE_EXP === 'true',
      clockToleranceS: e.JWT_CLOCK_TOLERANCE,
    },
    openai: {
      apiKey: e.OPENAI_API_KEY,
      baseUrl: e.OPENAI_BASE_URL,
      model: e.OPENAI_MODEL,
      titleModel: e.TITLE_MODEL === 'off' ? null : (e.TITLE_MODEL ?? e.OPENAI_MODEL),
      maxRetries: e.OPENAI_MAX_RETRIES,
      systemPrompt: systemPrompt(e.SYSTEM_PROMPT, e.SYSTEM_PROMPT_FILE),
    },
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
    drainWindowMs: e.DRAIN_WINDOW ?? (e.NODE_ENV === 'production' ? DRAIN_WINDOW_PRODUCTION_MS : 0),
    graphql: {
      maxTokens: e.GRAPHQL_MAX_TOKENS,
      maxDepth: e.GRAPHQL_MAX_DEPTH,
      maxAliases: e.GRAPHQL_MAX_ALIASES,
      maxDirectives: e.GRAPHQL_MAX_DIRECTIVES,
      maxCost: e.GRAPHQL_MAX_COST,
    },
    metadataMaxBytes: e.METADATA_MAX_BYTES,
    search: { language: e.SEARCH_LANGUAGE, highlightStart: e.SEARCH_HIGHLIGHT_START, highlightStop: e.SEARCH_HIGHLIGHT_STOP },
    corsOrigins: parseOrigins(e.CORS_ORIGINS),
    http: { headersTimeoutMs: e.HEADERS_TIMEOUT, requestTimeoutMs: e.REQUEST_TIMEOUT },
    rateLimits: {
      turnsPerMinute: e.RATE_TURNS_PER_MINUTE,
      conversationsPerHour: e.RATE_CONVERSATIONS_PER_HOUR,
      mcpCallsPerMinute: e.RATE_MCP_CALLS_PER_MINUTE,
      tokensPerDay: e.QUOTA_TOKENS_PER_DAY,
      tasks: e.QUOTA_TASKS,
    },
    mcpBatchMax: e.MCP_BATCH_MAX,
    retention: {
      ttlMs: e.CONVERSATION_TTL,
      archiveAfterMs: e.ARCHIVE_AFTER,
      sweepIntervalMs: e.SWEEP_INTERVAL,
      batchSize: e.SWEEP_BATCH,
    },
    subscriptions: {
      perConnection: e.SUBSCRIPTIONS_PER_CONNECTION,
      perUser: e.SUBSCRIPTIONS_PER_USER,
      heartbeatMs: e.SUBSCRIPTION_HEARTBEAT,
    },
    introspection: e.INTROSPECTION ? e.INTROSPECTION === 'true' : e.NODE_ENV !== 'production',
    chatPage: e.CHAT_PAGE ? e.CHAT_PAGE === 'on' : e.NODE_ENV !== 'production',
    logLevel: e.LOG_LEVEL,
    logFormat: e.LOG_FORMAT,
    logUserIds: e.LOG_USER_IDS === 'on',
    metrics: metricsSettings(e),
    tracing: { endpoint: e.OTEL_EXPORTER_OTLP_ENDPOINT, serviceName: e.OTEL_SERVICE_NAME },
  };
}

/** The instructions of the todo assistant, used unless `SYSTEM_PROMPT` or `SYSTEM_PROMPT_FILE` replaces them. */
export const DEFAULT_SYSTEM_PROMPT = [
  "You are a todo assistant. You keep the user's task list with the tools you are given.",
  '- Do what the user asks with the tools, then confirm in a sentence or two what you did, naming the tasks you added, completed, changed or deleted.',
  '- Before you complete, change or delete a task the user names by its title, call list_tasks and take the task_id from its result.',
  '- Never invent or guess a task_id: use only ids that a tool returned. When no task or more than one task fits, say so and ask which one is meant.',
  '- When a tool reports an error, say plainly what failed. Never claim an action that did not succeed.',
].join('\n');

// Private: `text`, else the content of `file` (read now, once), else `DEFAULT_SYSTEM_PROMPT`.
// Throws, naming the variable, when both are set or the file cannot be read or is empty.
function systemPrompt(text: string | undefined, file: string | undefined): string {
  if (text !== undefined && file !== undefined) throw new Error('Set SYSTEM_PROMPT or SYSTEM_PROMPT_FILE, not both');
  if (text !== undefined) return text;
  if (file === undefined) return DEFAULT_SYSTEM_PROMPT;
  let content: string;
  try {
    content = readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`SYSTEM_PROMPT_FILE: cannot read ${JSON.stringify(file)}: ${(error as Error).message}`, { cause: error });
  }
  if (content.trim() === '') throw new Error(`SYSTEM_PROMPT_FILE: ${JSON.stringify(file)} is empty`);
  return content;
}

// Private: METRICS unset is on, except in production where the API's port would serve them to
// anyone: there, on once they have their own port or a token.
function metricsSettings(e: z.infer<typeof schema>): MetricsSettings {
  const guarded = e.METRICS_PORT !== undefined || e.METRICS_TOKEN !== undefined;
  const enabled = e.METRICS ? e.METRICS === 'on' : e.NODE_ENV !== 'production' || guarded;
  return { enabled, token: e.METRICS_TOKEN, port: e.METRICS_PORT, offInProduction: e.METRICS === undefined && !enabled };
}

/** The smallest HS256 secret production accepts: 256 bits, the size of the hash (RFC 7518 3.2). */
const JWT_SECRET_MIN_BYTES = 32;

// Private: settings that are fine for a developer but unsafe on the internet.
function productionProblems(e: z.infer<typeof schema>): string[] {
  if (e.NODE_ENV !== 'production') return [];
  const problems: string[] = [];
  if (e.JWT_SECRET !== undefined && Buffer.byteLength(e.JWT_SECRET) < JWT_SECRET_MIN_BYTES) {
    problems.push(
      `JWT_SECRET: in production it must be at least ${JWT_SECRET_MIN_BYTES} bytes (got ${Buffer.byteLength(e.JWT_SECRET)}); make one with \`openssl rand -base64 32\``,
    );
  }
  if (e.CORS_ORIGINS?.trim() === '*') problems.push('CORS_ORIGINS: `*` is refused in production; list the origins (comma-separated)');
  return problems;
}

// Private: `CORS_ORIGINS` as a list of origins (`https://app.example.com,http://localhost:5173`) or `*`.
function parseOrigins(value: string | undefined): string[] | '*' {
  if (value === undefined) return [];
  if (value.trim() === '*') return '*';
  const origins = value
    .split(',')
    .map((origin) => origin.trim())
    .filter(Boolean);
  for (const origin of origins) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      parsed = undefined;
    }
    if (!parsed || parsed.origin !== origin) {
      throw new Error(
        `Invalid configuration:\n  CORS_ORIGINS: each entry must be an origin such as https://app.example.com (scheme, host, port; no path), got ${JSON.stringify(origin)}`,
      );
    }
  }
  return origins;
}

/** The environment that turns every per-user rate limit and quota off (benchmarks, fault runs, tests). */
export const RATE_LIMITS_OFF: Readonly<Record<string, string>> = {
  RATE_TURNS_PER_MINUTE: '0',
  RATE_CONVERSATIONS_PER_HOUR: '0',
  RATE_MCP_CALLS_PER_MINUTE: '0',
  QUOTA_TOKENS_PER_DAY: '0',
  QUOTA_TASKS: '0',
  MCP_BATCH_MAX: '0',
};
