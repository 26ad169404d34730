/**
 * `/mcp`: the built-in todo MCP server for outside MCP clients, over Streamable HTTP in stateless
 * mode. Each POST is authenticated like `/graphql` (a bearer token; 401 otherwise) and served by
 * a todo server and transport made for that request alone, acting as the token's user, so any
 * instance answers any request and nothing is kept between them. Without sessions there is no
 * server-to-client stream to open (GET) or session to end (DELETE): both answer 405.
 *
 * Every answer, errors included, is a JSON-RPC message, as MCP clients expect on this endpoint.
 * Limits, per user and across instances: a batch longer than `batchMax` messages is refused
 * (400), and each `tools/call` counts against `mcpCallsPerMinute` before anything runs (429 with
 * `Retry-After` past it); the todo server holds each user to `tasks` tasks.
 */
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import express, { type ErrorRequestHandler, type RequestHandler, type Response, Router } from 'express';
import type { Authenticator } from '../auth/authenticator.js';
import type { Viewer } from '../auth/viewer.js';
import { countMcpCalls } from '../chat/rate-limits.js';
import type { RateLimits } from '../config.js';
import type { Orm } from '../db/orm.js';
import { taskStore } from '../db/stores/tasks.js';
import { AppError } from '../errors.js';
import { createTodoServer } from '../mcp/todo-server.js';
import { type HttpFailure, httpFailure, middlewareFailure, setFailureHeaders } from './errors.js';

// JSON-RPC error codes: the standard ones, and the implementation-defined range the SDK uses too.
const PARSE_ERROR = -32700;
const INVALID_REQUEST = -32600;
const INTERNAL_ERROR = -32603;
const SERVER_ERROR = -32000;
const UNAUTHORIZED = -32001;
/** What an unexpected failure of `/mcp` is logged as. */
const FAILED = 'MCP request failed';

/** The limits of `/mcp` (0 = off): calls per minute, tasks per user, JSON-RPC messages per POST. */
export type McpLimits = Pick<RateLimits, 'mcpCallsPerMinute' | 'tasks'> & { batchMax: number };

/** The `/mcp` routes; mount with `app.use('/mcp', mcpRouter(...))`. JSON bodies are capped at `bodyLimit`. */
export function mcpRouter(deps: { orm: Orm; auth: Authenticator; bodyLimit: string; limits: McpLimits }): Router {
  const router = Router();
  const { limits } = deps;

  router.post('/', authenticate(deps.auth), express.json({ limit: deps.bodyLimit }), async (req, res) => {
    const viewer = res.locals.viewer as Viewer;
    const messages: unknown[] = Array.isArray(req.body) ? req.body : [req.body];
    if (limits.batchMax > 0 && messages.length > limits.batchMax) {
      sendRpcError(
        res,
        400,
        INVALID_REQUEST,
        `Batch of ${messages.length} messages: at most ${limits.batchMax} are accepted in one request`,
        {
          limit: limits.batchMax,
        },
      );
      return;
    }
    const em = deps.orm.em.fork();
    try {
      await countMcpCalls(em, viewer.userId, messages.filter(isToolCall).length, limits.mcpCallsPerMinute);
    } catch (error) {
      // RATE_LIMITED: 429 with `Retry-After`; anything else is logged and masked.
      sendRpcFailure(res, httpFailure(error, req.log, FAILED));
      return;
    }
    const server = createTodoServer(taskStore(em), { userId: viewer.userId }, { maxTasks: limits.tasks, log: req.log });
    // Stateless: no session id; plain JSON answers, since the todo tools stream nothing.
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    try {
      await server.connect(transport);
      await transport.handleRequest(req, res, req.body);
    } catch (error) {
      const failure = httpFailure(error, req.log, FAILED);
      if (!res.headersSent) sendRpcFailure(res, failure);
    }
  });

  router.all('/', (_req, res) => {
    res.setHeader('Allow', 'POST');
    sendRpcError(res, 405, SERVER_ERROR, 'Method not allowed: this MCP endpoint is stateless and answers POST only');
  });

  router.use(routeErrors);
  return router;
}

// Private: the viewer into `res.locals.viewer`, or 401 with the challenge RFC 6750 asks for
// (`error="invalid_token"` only when a token was sent).
function authenticate(auth: Authenticator): RequestHandler {
  return async (req, res, next) => {
    try {
      res.locals.viewer = await auth.authenticate(req.headers.authorization);
    } catch (error) {
      if (!(error instanceof AppError) || error.code !== 'UNAUTHENTICATED') throw error;
      const tokenSent = /^Bearer\s+\S/i.test(req.headers.authorization ?? '');
      res.setHeader('WWW-Authenticate', tokenSent ? 'Bearer realm="mcp", error="invalid_token"' : 'Bearer realm="mcp"');
      sendRpcFailure(res, httpFailure(error, req.log, FAILED));
      return;
    }
    next();
  };
}

// Private: a body that is not JSON or is too large, and any failure (e.g. the JWKS being down),
// as JSON-RPC errors; internal details are logged, not sent.
const routeErrors: ErrorRequestHandler = (error, req, res, next) => {
  if (res.headersSent) return next(error);
  if (error?.type === 'entity.parse.failed') return sendRpcError(res, 400, PARSE_ERROR, `Parse error: ${error.message}`);
  if (error?.type === 'entity.too.large') return sendRpcError(res, 413, INVALID_REQUEST, `Request body larger than ${error.limit} bytes`);
  // The body parser's other refusals (an unsupported charset or encoding: 415) are the client's.
  sendRpcFailure(res, middlewareFailure(error) ?? httpFailure(error, req.log, FAILED));
};

function isToolCall(message: unknown): boolean {
  return typeof message === 'object' && message !== null && (message as { method?: unknown }).method === 'tools/call';
}

// Private: an HTTP failure (`./errors.ts`) as a JSON-RPC error with the same status and headers: an
// `AppError`'s code and details go in `data`, a refused request is INVALID_REQUEST, a masked one INTERNAL_ERROR.
function sendRpcFailure(res: Response, failure: HttpFailure): void {
  setFailureHeaders(res, failure);
  if (failure.code === 'INTERNAL_SERVER_ERROR') sendRpcError(res, failure.status, INTERNAL_ERROR, failure.message);
  else if (failure.code === 'BAD_REQUEST') sendRpcError(res, failure.status, INVALID_REQUEST, failure.message);
  else {
    const code = failure.code === 'UNAUTHENTICATED' ? UNAUTHORIZED : SERVER_ERROR;
    sendRpcError(res, failure.status, code, failure.message, { code: failure.code, ...failure.details });
  }
}

function sendRpcError(res: Response, status: number, code: number, message: string, data?: unknown): void {
  res.status(status).json({ jsonrpc: '2.0', error: { code, message, ...(data === undefined ? {} : { data }) }, id: null });
}
