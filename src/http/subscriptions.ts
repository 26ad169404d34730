/**
 * GraphQL subscriptions over the two streaming transports, on Apollo's path `/graphql`:
 * - WebSocket: graphql-ws (the `graphql-transport-ws` protocol) on the HTTP upgrade of the
 *   server it is attached to (`attach`). The token is the `connection_init` payload's
 *   `Authorization` (or `authorization`), else the upgrade request's header; without a valid one
 *   the socket closes with 4401 and nothing runs. The socket closes with 4401 too when the token
 *   expires. Ping frames every SUBSCRIPTION_HEARTBEAT ms; a socket that has not answered one by
 *   the next is cut.
 * - Server-Sent Events: graphql-sse in its distinct connections mode, `POST /graphql` with
 *   `Accept: text/event-stream` (the `sse` handler, mounted before Apollo): one operation per
 *   request, authenticated by its `Authorization` header (401 JSON without a valid one). A comment
 *   line every SUBSCRIPTION_HEARTBEAT ms keeps it alive; it ends with an UNAUTHENTICATED error when
 *   the token expires.
 *
 * Both run a subscription as Apollo runs a query: the document's limits (`graphql/limits.ts`) before
 * validation and execution, errors through the same `formatError`. Each event is executed with a
 * context of its own (unit of work, loaders), so nested fields never show what an earlier event
 * loaded. A user holds at most SUBSCRIPTIONS_PER_USER subscriptions on this instance, a WebSocket
 * at most SUBSCRIPTIONS_PER_CONNECTION; past either, TOO_MANY_SUBSCRIPTIONS and nothing streamed.
 * A domain error ending a stream (SLOW_CONSUMER when the connection holds too much unsent) reaches
 * the client as the stream's last result, an error with its code, so that it resumes with `after:`.
 *
 * This module owns the live subscriptions of the process (their slots, sockets and streams) and
 * ends them all on `close()`.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Request, RequestHandler, Response } from 'express';
import {
  createSourceEventStream,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  execute,
  type FormattedExecutionResult,
  GraphQLError,
  type GraphQLFormattedError,
  type GraphQLSchema,
  getOperationAST,
  parse,
  validate,
} from 'graphql';
import { createHandler as createSseHandler, type Request as SseRequest } from 'graphql-sse';
import { CloseCode, type SubscribePayload } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { decodeJwt } from 'jose';
import { type WebSocket, WebSocketServer } from 'ws';
import type { Authenticator } from '../auth/authenticator.js';
import type { Viewer } from '../auth/viewer.js';
import type { Chat } from '../chat/chat.js';
import type { Config } from '../config.js';
import type { Orm } from '../db/orm.js';
import { AppError, tooManySubscriptions, unauthenticated } from '../errors.js';
import { createContext } from '../graphql/context.js';
import { formatError } from '../graphql/errors.js';
import { checkOperation, type createShapeCheck } from '../graphql/limits.js';
import type { SubscriptionContext } from '../graphql/resolvers/events.js';
import type { Logger } from '../log.js';
import { sendError } from './errors.js';

export type SubscriptionDeps = {
  schema: GraphQLSchema;
  config: Config;
  log: Logger;
  orm: Orm;
  chat: Chat;
  auth: Authenticator;
  /** The same check of a document's shape as the HTTP edge's (`createShapeCheck`). */
  shapeCheck: ReturnType<typeof createShapeCheck>;
};

export type Subscriptions = {
  /** Express handler for `/graphql`, before Apollo: serves `POST` with `Accept: text/event-stream`, passes anything else on. */
  sse: RequestHandler;
  /** Serves WebSocket subscriptions on `server`'s upgrades to `/graphql`; the function returned stops them (sockets closed with 1001). */
  attach(server: Server): () => Promise<void>;
  /** Ends every subscription of the process: WebSockets closed with 1001, SSE streams completed; no new ones after. Never throws. */
  close(): Promise<void>;
};

const PATH = '/graphql';
/** The longest delay a Node.js timer keeps; a token expiring later is checked again then. */
const TIMER_MAX_MS = 2 ** 31 - 1;
/** Largest WebSocket message accepted, as the HTTP body limit. */
const MAX_MESSAGE_BYTES = 1024 * 1024;

/** What one connection (a WebSocket, or an SSE request) is: whose, and how many subscriptions it holds. */
type Connection = { viewer: Viewer; log: Logger; active: number; backlog: () => number };

/** The context of one operation, as this module makes it: the resolvers' and what the stream needs to end. */
type OperationContext = SubscriptionContext & { operation: { connection: Connection; controller: AbortController } };

export function createSubscriptions(deps: SubscriptionDeps): Subscriptions {
  const { schema, config, log, orm, chat, auth, shapeCheck } = deps;
  const caps = config.subscriptions;
  const format = formatError(log, { hideSuggestions: config.env === 'production' });
  // Private: subscriptions per user on this instance.
  const perUser = new Map<string, number>();
  // Private: what `close()` stops.
  const detachers = new Set<() => Promise<void>>();
  const streams = new Set<AbortController>();
  let closed = false;

  /** A context for `connection`'s operation, or for one event of it (same stream, fresh unit of work and loaders). */
  const contextFor = (connection: Connection, controller: AbortController): OperationContext => ({
    ...createContext(orm.em.fork(), chat, connection.viewer, connection.log, config.search),
    stream: { backlog: connection.backlog, signal: controller.signal },
    operation: { connection, controller },
  });

  /** Takes a slot for a subscription of `connection`, or throws TOO_MANY_SUBSCRIPTIONS; the function returned gives it back (once). */
  const takeSlot = (connection: Connection): (() => void) => {
    const { userId } = connection.viewer;
    const held = perUser.get(userId) ?? 0;
    if (connection.active >= caps.perConnection) {
      throw tooManySubscriptions(`This connection holds ${connection.active} subscriptions; at most ${caps.perConnection} are allowed`);
    }
    if (held >= caps.perUser) {
      throw tooManySubscriptions(`You hold ${held} subscriptions on this server; at most ${caps.perUser} are allowed`);
    }
    connection.active++;
    perUser.set(userId, held + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      connection.active--;
      const left = (perUser.get(userId) ?? 1) - 1;
      if (left > 0) perUser.set(userId, left);
      else perUser.delete(userId);
    };
  };

  /**
   * Runs a subscription (graphql-js's `subscribe`, but for the context of each event): takes a
   * slot, opens the source stream (the resolver's `subscribe`: authorization, cursor), and
   * executes each event with a fresh context. Errors before the stream opens come back as a result.
   */
  const subscribe = async (args: ExecutionArgs): Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> => {
    const context = args.contextValue as OperationContext;
    const { connection, controller } = context.operation;
    let release: () => void;
    try {
      if (closed) throw shuttingDown();
      release = takeSlot(connection);
    } catch (error) {
      return { errors: [located(error as AppError, args)] };
    }
    let source: Awaited<ReturnType<typeof createSourceEventStream>>;
    try {
      source = await createSourceEventStream(args);
    } catch (error) {
      release();
      throw error;
    }
    if (!(Symbol.asyncIterator in source)) {
      release();
      return source;
    }
    streams.add(controller);
    return new EventResults(
      source[Symbol.asyncIterator](),
      (payload) => execute({ ...args, rootValue: payload, contextValue: contextFor(connection, controller) }),
      (error) => located(error, args),
      () => {
        controller.abort();
        streams.delete(controller);
        release();
      },
      controller.signal,
    );
  };

  /**
   * The checks Apollo makes of a request before it executes, for a subscription: the document's
   * shape and tokens, validation, one subscription operation, the variables' text and the cost.
   */
  const prepare = (params: { query: string; operationName?: string | null; variables?: Record<string, unknown> | null }) => {
    const refused = shapeCheck(params.query);
    if (refused) return [refused];
    let document: DocumentNode;
    try {
      document = parse(params.query, { maxTokens: config.graphql.maxTokens });
    } catch (error) {
      if (error instanceof GraphQLError) return [withCode(error, 'GRAPHQL_PARSE_FAILED')];
      throw error;
    }
    const invalid = validate(schema, document);
    if (invalid.length > 0) return invalid.map((error) => withCode(error, 'GRAPHQL_VALIDATION_FAILED'));
    const operation = getOperationAST(document, params.operationName);
    if (!operation) return [new GraphQLError('Name the operation to run (operationName)', { extensions: { code: 'BAD_USER_INPUT' } })];
    if (operation.operation !== 'subscription') {
      return [
        new GraphQLError(`Send a ${operation.operation} as a plain POST /graphql; this transport streams subscriptions`, {
          extensions: { code: 'GRAPHQL_VALIDATION_FAILED', limit: 'operationType' },
        }),
      ];
    }
    try {
      checkOperation(schema, config.graphql, { document, operation, operationName: params.operationName, variables: params.variables });
    } catch (error) {
      if (error instanceof GraphQLError) return [error];
      throw error;
    }
    return { schema, document, operationName: params.operationName, variableValues: params.variables };
  };

  /** An error as clients are shown it: `formatError`'s mapping (AppError codes, internal errors masked). */
  const formatOne = (error: GraphQLError): GraphQLFormattedError => {
    const { originalError } = error;
    // An error of the stream itself has no path: hand its cause over, so that it is mapped (or masked) by what it is.
    const cause = originalError && !(originalError instanceof GraphQLError) && !error.path ? originalError : error;
    const formatted = format(error.toJSON(), cause);
    if (!formatted.extensions?.http) return formatted;
    const { http: _http, ...extensions } = formatted.extensions;
    return { ...formatted, extensions };
  };
  const formatResult = (result: ExecutionResult): FormattedExecutionResult =>
    result.errors ? { ...result, errors: result.errors.map(formatOne) } : (result as FormattedExecutionResult);

  // --- WebSocket (graphql-ws)

  const attach = (server: Server): (() => Promise<void>) => {
    const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });
    const connections = new WeakMap<WebSocket, Connection & { expiry?: { cancel(): void } }>();
    const graphqlWs = useServer(
      {
        schema,
        async onConnect(ctx) {
          const { socket, request } = ctx.extra;
          const header = tokenHeader(ctx.connectionParams) ?? request.headers.authorization;
          let viewer: Viewer;
          try {
            viewer = await auth.authenticate(header);
          } catch (error) {
            if (error instanceof AppError) socket.close(CloseCode.Unauthorized, 'Unauthorized');
            else {
              log.error({ err: error }, 'could not check the token of a WebSocket connection');
              socket.close(CloseCode.InternalServerError, 'Internal server error');
            }
            return false;
          }
          const expiresAt = tokenExpiry(header, config.jwt.clockToleranceS);
          connections.set(socket, {
            viewer,
            log: log.child({ userId: viewer.userId, transport: 'ws' }),
            active: 0,
            backlog: () => socket.bufferedAmount,
            expiry: expiresAt === null ? undefined : deadline(expiresAt, () => socket.close(CloseCode.Unauthorized, 'Token expired')),
          });
          return true;
        },
        onClose(ctx) {
          connections.get(ctx.extra.socket)?.expiry?.cancel();
        },
        onSubscribe(_ctx, _id, payload: SubscribePayload) {
          const prepared = prepare(payload);
          return Array.isArray(prepared) ? prepared : { ...prepared, variableValues: prepared.variableValues ?? undefined };
        },
        context(ctx) {
          const connection = connections.get(ctx.extra.socket);
          if (!connection) throw new Error('graphql-ws ran an operation on a socket it had not acknowledged');
          return contextFor(connection, new AbortController());
        },
        subscribe,
        onNext: (_ctx, _id, _payload, _args, result) => formatResult(result),
        onError: (_ctx, _id, _payload, errors) => errors.map(formatOne),
      },
      wss,
      caps.heartbeatMs,
    );
    const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (closed || pathOf(request) !== PATH) {
        socket.end(`HTTP/1.1 ${closed ? '503 Service Unavailable' : '404 Not Found'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
        return;
      }
      wss.handleUpgrade(request, socket, head, (client) => wss.emit('connection', client, request));
    };
    server.on('upgrade', onUpgrade);
    let detached: Promise<void> | undefined;
    const detach = () => {
      detached ??= (async () => {
        server.off('upgrade', onUpgrade);
        detachers.delete(detach);
        await graphqlWs.dispose();
      })();
      return detached;
    };
    detachers.add(detach);
    return detach;
  };

  // --- Server-Sent Events (graphql-sse, distinct connections mode)

  type SseContext = { res: Response; connection: Connection; controller: AbortController };
  const sseHandler = createSseHandler<Request, SseContext, OperationContext>({
    schema,
    // Authenticated before the handler runs; the empty token selects the distinct connections mode.
    authenticate: () => '',
    onSubscribe(req, params) {
      const prepared = prepare({ query: params.query, operationName: params.operationName, variables: params.variables });
      // With `data`, or graphql-sse takes the result for execution arguments.
      if (Array.isArray(prepared)) return { data: null, errors: prepared };
      const { connection, controller } = req.context;
      return {
        ...prepared,
        operationName: prepared.operationName ?? undefined,
        variableValues: prepared.variableValues ?? undefined,
        contextValue: contextFor(connection, controller),
      };
    },
    context: (req) => contextFor(req.context.connection, req.context.controller),
    subscribe,
    onNext: (_ctx, _req, result) => formatResult(result as ExecutionResult) as ExecutionResult,
  });

  const sse: RequestHandler = async (req, res, next) => {
    if (req.method !== 'POST' || !acceptsEventStream(req.headers.accept)) return next();
    if (closed) return sendError(res, shuttingDown(), req.log);
    let viewer: Viewer;
    try {
      viewer = await auth.authenticate(req.headers.authorization);
    } catch (error) {
      return sendError(res, error, req.log);
    }
    const controller = new AbortController();
    const connection: Connection = { viewer, log: req.log, active: 0, backlog: () => res.writableLength };
    const expiresAt = tokenExpiry(req.headers.authorization, config.jwt.clockToleranceS);
    const expiry =
      expiresAt === null
        ? undefined
        : deadline(expiresAt, () =>
            controller.abort(unauthenticated('The bearer token expired: subscribe again with a new one, after: the last cursor received')),
          );
    let heartbeat: NodeJS.Timeout | undefined;
    try {
      const [body, init] = await sseHandler({
        method: req.method,
        url: req.originalUrl,
        headers: {
          // graphql-sse compares the whole header; any Accept that lists text/event-stream was routed here.
          get: (key: string) => (key === 'accept' ? 'text/event-stream' : headerValue(req.headers[key])),
        },
        body: () => Promise.resolve(req.body),
        raw: req,
        context: { res, connection, controller },
      } satisfies SseRequest<Request, SseContext>);
      res.writeHead(init.status, init.statusText, { ...init.headers, 'x-accel-buffering': 'no' });
      if (!body || typeof body === 'string') {
        res.end(body ?? undefined);
        return;
      }
      const stop = () => {
        controller.abort();
        void body.return?.(undefined);
      };
      res.once('close', stop);
      // A comment line every SUBSCRIPTION_HEARTBEAT ms, as the WebSockets' pings (graphql-sse's own
      // come every 12 s): proxies keep an idle stream open, and a peer gone is found by the writes.
      heartbeat = setInterval(() => {
        if (res.writable) res.write(':\n\n');
      }, caps.heartbeatMs);
      heartbeat.unref();
      // Written without waiting for each chunk to drain: what the client has not read yet is the
      // response's `writableLength`, the backlog the event stream ends with SLOW_CONSUMER above.
      for await (const chunk of body) {
        if (!res.writable) break;
        res.write(chunk);
      }
      res.off('close', stop);
      res.end();
    } catch (error) {
      if (res.headersSent) {
        req.log.error({ err: error }, 'an SSE stream failed');
        res.destroy();
      } else sendError(res, error, req.log);
    } finally {
      clearInterval(heartbeat);
      expiry?.cancel();
      controller.abort();
    }
  };

  return {
    sse,
    attach,
    async close() {
      closed = true;
      for (const controller of streams) controller.abort();
      const results = await Promise.allSettled([...detachers].map((detach) => detach()));
      for (const result of results) if (result.status === 'rejected') log.warn({ err: result.reason }, 'closing a WebSocket server failed');
    },
  };
}

/**
 * The results of a subscription, one per event of `source`, each executed by `run`. A domain
 * error (`AppError`) that ends `source` comes out as one last result with that error, and so does
 * an `AppError` the stream was aborted with (an expired token); `onEnd` runs once, however it ends.
 * `return()` ends it at once, even while an event is awaited.
 */
class EventResults implements AsyncIterableIterator<ExecutionResult> {
  private finished = false;

  constructor(
    private readonly source: AsyncIterator<unknown>,
    private readonly run: (payload: unknown) => ExecutionResult | Promise<ExecutionResult>,
    private readonly toError: (error: AppError) => GraphQLError,
    private readonly onEnd: () => void,
    private readonly signal: AbortSignal,
  ) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<ExecutionResult>> {
    if (this.finished) return { done: true, value: undefined };
    let step: IteratorResult<unknown>;
    try {
      step = await this.source.next();
    } catch (error) {
      const wasFinished = this.finished;
      this.end();
      if (error instanceof AppError && !wasFinished) return { done: false, value: { errors: [this.toError(error)] } };
      throw error;
    }
    if (step.done || this.finished) {
      const reason: unknown = this.signal.reason;
      const last = !this.finished && reason instanceof AppError;
      this.end();
      return last ? { done: false, value: { errors: [this.toError(reason)] } } : { done: true, value: undefined };
    }
    return { done: false, value: await this.run(step.value) };
  }

  async return(): Promise<IteratorResult<ExecutionResult>> {
    this.end();
    await this.source.return?.();
    return { done: true, value: undefined };
  }

  async throw(error?: unknown): Promise<IteratorResult<ExecutionResult>> {
    this.end();
    await this.source.return?.();
    throw error;
  }

  private end(): void {
    if (this.finished) return;
    this.finished = true;
    this.onEnd();
  }
}

/** SLOW_CONSUMER (HTTP 503), as the event hub says it when it stops: the client resumes on another instance. */
function shuttingDown(): AppError {
  return new AppError('SLOW_CONSUMER', 'This instance is shutting down; subscribe on another, after: the last cursor received');
}

/** `error` at the subscription's root field, as graphql-js reports a resolver's error. */
function located(error: AppError, args: ExecutionArgs): GraphQLError {
  const operation = getOperationAST(args.document, args.operationName);
  const field = operation?.selectionSet.selections.find((selection) => selection.kind === 'Field');
  const key = field && field.kind === 'Field' ? (field.alias ?? field.name).value : 'subscription';
  return new GraphQLError(error.message, { originalError: error, path: [key], nodes: field ? [field] : undefined });
}

function withCode(error: GraphQLError, code: string): GraphQLError {
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    extensions: { ...error.extensions, code },
  });
}

/** The `Authorization` of a `connection_init` payload (either case), as a header value. */
function tokenHeader(params: Record<string, unknown> | undefined): string | undefined {
  const value = params?.Authorization ?? params?.authorization;
  return typeof value === 'string' ? value : undefined;
}

/** When the (verified) bearer token of `header` stops being accepted, in ms since the epoch; null without `exp`. */
function tokenExpiry(header: string | undefined, clockToleranceS: number): number | null {
  const token = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')?.[1];
  if (!token) return null;
  const { exp } = decodeJwt(token);
  return typeof exp === 'number' ? (exp + clockToleranceS) * 1000 : null;
}

/**
 * Runs `action` at `at` (ms since the epoch), at once if that has passed; `cancel()` stops it. The
 * timer is re-armed past Node's longest delay (a 30-day token outlives one timer), and unref'd.
 */
function deadline(at: number, action: () => void): { cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    const wait = at - Date.now();
    if (wait <= 0) return action();
    timer = setTimeout(arm, Math.min(wait, TIMER_MAX_MS));
    timer.unref();
  };
  arm();
  return { cancel: () => clearTimeout(timer) };
}

function acceptsEventStream(accept: string | undefined): boolean {
  return (accept ?? '').split(',').some((type) => type.split(';')[0]?.trim().toLowerCase() === 'text/event-stream');
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

function pathOf(request: IncomingMessage): string {
  return new URL(request.url ?? '/', 'http://localhost').pathname;
}
