/**
 * Subscription clients for tests, over the two transports a client would use: the real
 * `graphql-ws` client on a `ws` WebSocket, and Server-Sent Events read from a real HTTP response
 * (graphql-sse's distinct connections mode), parsed here line by line. Both collect what arrives
 * into the same `Stream`, which tests wait on with `until`.
 */
import type { FormattedExecutionResult, GraphQLFormattedError } from 'graphql';
import { type Client, createClient } from 'graphql-ws';
import WebSocket from 'ws';

/** The server to subscribe to: its origin, `http://host:port` (a `TestServer`, or a process's `{ url: origin }`). */
type Target = { url: string };

export type Transport = 'ws' | 'sse';

/** What one subscription received so far. */
export type Stream = {
  /** Every result (`next`), in order. */
  results: FormattedExecutionResult[];
  /** The operation's own errors (`error` message, or a result's `errors`). */
  errors: GraphQLFormattedError[];
  /** `open` until the server completes it, it fails, or its connection closes. */
  state: 'open' | 'complete' | 'error';
  /** Stops it (unsubscribe, or abort the request). */
  stop(): void;
};

/** One WebSocket connection of the real graphql-ws client; `closed` is the close code once it closed. */
export type WsConnection = {
  client: Client;
  closed: number | null;
  subscribe(query: string, variables?: Record<string, unknown>): Stream;
  dispose(): Promise<void>;
};

/**
 * A graphql-ws connection to `server`: `token` goes in the `connection_init` payload's
 * `Authorization` (null: none), `headerToken` in the upgrade request's header.
 */
export function wsConnect(
  server: Target,
  token: string | null,
  options: { headerToken?: string; params?: Record<string, unknown>; onSocket?: (socket: WebSocket) => void } = {},
): WsConnection {
  const { headerToken, onSocket } = options;
  // The upgrade request's headers, as a server-side client sets them (browsers cannot); the socket handed to `onSocket`.
  class HeaderWebSocket extends WebSocket {
    constructor(address: string, protocols?: string | string[]) {
      super(address, protocols, headerToken ? { headers: { authorization: `Bearer ${headerToken}` } } : {});
      onSocket?.(this);
    }
  }
  const connection: WsConnection = {
    closed: null,
    client: createClient({
      url: `${server.url.replace(/^http/, 'ws')}/graphql`,
      webSocketImpl: HeaderWebSocket,
      connectionParams: options.params ?? (token === null ? {} : { Authorization: `Bearer ${token}` }),
      lazy: false,
      // A refused connection is told by `closed`; graphql-ws would print it too.
      onNonLazyError: () => undefined,
      retryAttempts: 0,
      on: {
        closed: (event) => {
          connection.closed = (event as { code: number }).code;
        },
      },
    }),
    subscribe(query, variables) {
      const stream: Stream = { results: [], errors: [], state: 'open', stop: () => undefined };
      stream.stop = connection.client.subscribe(
        { query, variables },
        {
          next: (result) => {
            stream.results.push(result as FormattedExecutionResult);
            if (result.errors) stream.errors.push(...result.errors);
          },
          error: (error) => {
            if (Array.isArray(error)) stream.errors.push(...(error as GraphQLFormattedError[]));
            stream.state = 'error';
          },
          complete: () => {
            if (stream.state === 'open') stream.state = 'complete';
          },
        },
      );
      return stream;
    },
    async dispose() {
      try {
        await connection.client.dispose();
      } catch (error) {
        // A connection the server closed rejects with its close event: what `closed` already says.
        if (connection.closed === null) throw error;
      }
    },
  };
  return connection;
}

/** An SSE subscription: the HTTP status, the JSON body when the server answered without a stream, and the stream. */
export type SseStream = Stream & {
  status: number;
  body: unknown;
  /** With `paused`: starts reading the stream (nothing is read before), resolves once it ended. */
  read?: () => Promise<void>;
};

/** `POST /graphql` with `Accept: text/event-stream`, read as the events arrive. */
export async function sseSubscribe(
  server: Target,
  token: string | null,
  query: string,
  variables?: Record<string, unknown>,
  options: { paused?: boolean } = {},
): Promise<SseStream> {
  const abort = new AbortController();
  const headers: Record<string, string> = { accept: 'text/event-stream', 'content-type': 'application/json' };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const response = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ query, variables }),
    signal: abort.signal,
  });
  const stream: SseStream = { results: [], errors: [], state: 'open', stop: () => abort.abort(), status: response.status, body: null };
  if (!response.headers.get('content-type')?.startsWith('text/event-stream')) {
    stream.body = await response.json().catch(() => null);
    stream.state = 'error';
    return stream;
  }
  if (options.paused) stream.read = () => readEvents(response, stream);
  else void readEvents(response, stream);
  return stream;
}

// Private: reads the event stream into `stream`: blocks end with a blank line; `event:` names it,
// `data:` lines carry JSON; lines starting with `:` are keep-alive comments.
async function readEvents(response: Response, stream: Stream): Promise<void> {
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n')) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = '';
        const data: string[] = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event:')) event = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
        }
        if (event === 'next') {
          const result = JSON.parse(data.join('\n')) as FormattedExecutionResult;
          stream.results.push(result);
          if (result.errors) stream.errors.push(...result.errors);
        } else if (event === 'complete' && stream.state === 'open') stream.state = 'complete';
      }
    }
    if (stream.state === 'open') stream.state = 'complete';
  } catch {
    if (stream.state === 'open') stream.state = 'error';
  }
}

/** A subscription over `transport` as `token`'s user. */
export async function subscribe(
  transport: Transport,
  server: Target,
  token: string,
  query: string,
  variables?: Record<string, unknown>,
): Promise<Stream & { dispose(): Promise<void> }> {
  if (transport === 'sse') {
    const stream = await sseSubscribe(server, token, query, variables);
    return Object.assign(stream, { dispose: async () => stream.stop() });
  }
  const connection = wsConnect(server, token);
  const stream = connection.subscribe(query, variables);
  return Object.assign(stream, { dispose: () => connection.dispose() });
}
