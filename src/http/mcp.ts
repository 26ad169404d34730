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
import express, { Router, type ErrorRequestHandler, type RequestHandler, type Response } from 'express';
import { countMcpCalls } from '../chat/rate-limits.js';
import type { Viewer } from '../chat/turn.js';
import type { RateLimits } from '../config.js';
import type { Orm } from '../db/orm.js';
import { AppError } from '../errors.js';
import { createTodoServer } from '../mcp/todo-server.js';
import type { Authenticator } from './auth.js';

// JSON-RPC error codes: the standard ones, and the implementation-defined range the SDK uses too.
const PARSE_ERROR = -32700;
const INVALID_REQUEST = -32600;
const INTERNAL_ERROR = -32603;
const SERVER_ERROR = -32000;
const UNAUTHORIZED = -32001;

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
      sendRpcError(res, 400, INVALID_REQUEST, `Batch of ${messages.length} messages: at most ${limits.batchMax} are accepted in one request`, {
        limit: limits.batchMax,
      });
      return;
    }
    const em = deps.orm.em.fork();
    try {
      await countMcpCalls(em, viewer.userId, messages.filter(isToolCall).length, limits.mcpCallsPerMinute);
    } catch (error) {
      if (!(error instanceof AppError) || error.code !== 'RATE_LIMITED') {
        req.log.error({ err: error }, 'MCP request failed');
        sendRpcError(res, 500, INTERNAL_ERROR, 'Internal server error');
        return;
      }
      const retryAfterMs = error.extensions.retryAfterMs as number;
      res.setHeader('Retry-After', String(Math.ceil(retryAfterMs / 1000)));
      sendRpcError(res, 429, SERVER_ERROR, error.message, { code: error.code, retryAfterMs });
      return;
    }
    const server = createTodoServer(em, viewer.userId, { maxTasks: limits.tasks, log: req.log });
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
      req.log.error({ err: error }, 'MCP request failed');
      if (!res.headersSent) sendRpcError(res, 500, INTERNAL_ERROR, 'Internal server error');
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
      sendRpcError(res, 401, UNAUTHORIZED, error.message, { code: error.code });
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
  if (typeof error?.status === 'number' && error.status >= 400 && error.status < 500) {
    return sendRpcError(res, error.status, INVALID_REQUEST, String(error.message ?? 'Bad request'));
  }
  req.log.error({ err: error }, 'MCP request failed');
  sendRpcError(res, 500, INTERNAL_ERROR, 'Internal server error');
};

function isToolCall(message: unknown): boolean {
  return typeof message === 'object' && message !== null && (message as { method?: unknown }).method === 'tools/call';
}

function sendRpcError(res: Response, status: number, code: number, message: string, data?: unknown): void {
  res.status(status).json({ jsonrpc: '2.0', error: { code, message, ...(data === undefined ? {} : { data }) }, id: null });
}
