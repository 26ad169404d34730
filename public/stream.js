/**
 * A conversation's events, live, over the `graphql-transport-ws` WebSocket protocol on `/graphql`
 * (the protocol of the `graphql-ws` library, written out here so that the page needs no package):
 *
 *   client: connection_init { Authorization }   server: connection_ack
 *   client: subscribe { id, query, variables }   server: next … then complete (or error)
 *   either: ping  ->  the other: pong            client: complete (to stop)
 *
 * Every event carries an opaque `cursor`. When the socket drops, or the server ends the stream
 * early (a slow consumer), the subscription starts again `after:` the last cursor received, so
 * nothing is missed and nothing is seen twice.
 */

const PROTOCOL = 'graphql-transport-ws';

const EVENTS = `subscription ConversationEvents($conversationId: ID!, $after: String) {
  conversationEvents(conversationId: $conversationId, after: $after) {
    __typename cursor type position turnId messageId
    ... on TextDeltaEvent { text }
    ... on ToolCallStartedEvent { callId server name arguments }
    ... on ToolCallFinishedEvent { toolCall { id callId server name arguments result isError durationMs } }
    ... on TurnCompletedEvent { message { id content status } }
    ... on TurnFailedEvent { code error }
  }
}`;

/** Close codes of the protocol after which trying again cannot help (bad request, unauthorized, forbidden). */
const FATAL_CLOSE_CODES = new Set([4400, 4401, 4403]);
/** Reconnections in a row before giving up; they wait 0.5 s, 1 s, 2 s, … */
const MAX_RETRIES = 5;
/** How long the server has to acknowledge `connection_init`. */
const ACK_TIMEOUT_MS = 10_000;

/**
 * Subscribes to the events of conversation `conversationId` after `after` (a cursor; null: from
 * now on). `onEvent(event)` gets each event in order; `onError(error)` is called once when the
 * stream cannot go on (then it is closed). Returns `close()`, which stops it; call it when the
 * turn awaited has ended.
 *
 * @param {{ token: string, conversationId: string, after: string | null,
 *   onEvent: (event: object) => void, onError: (error: Error) => void, url?: string }} options
 */
export function subscribeToConversation({ token, conversationId, after, onEvent, onError, url = socketUrl() }) {
  let cursor = after;
  let socket = null;
  let closed = false;
  let retries = 0;
  let ackTimer = null;
  let subscriptionId = 0;

  function connect() {
    socket = new WebSocket(url, PROTOCOL);
    const current = socket;
    const send = (message) => current.readyState === WebSocket.OPEN && current.send(JSON.stringify(message));

    current.addEventListener('open', () => {
      send({ type: 'connection_init', payload: { Authorization: `Bearer ${token}` } });
      ackTimer = setTimeout(() => current.close(4408, 'Connection initialisation timeout'), ACK_TIMEOUT_MS);
    });

    current.addEventListener('message', ({ data }) => {
      // A socket given up for a new one (resubscribing) has nothing more to say.
      if (closed || current !== socket) return;
      let message;
      try {
        message = JSON.parse(data);
      } catch {
        return current.close(4400, 'Invalid message');
      }
      switch (message.type) {
        case 'connection_ack':
          clearTimeout(ackTimer);
          subscriptionId += 1;
          send({ id: String(subscriptionId), type: 'subscribe', payload: { query: EVENTS, variables: { conversationId, after: cursor } } });
          return;
        case 'ping':
          send({ type: 'pong' });
          return;
        case 'next': {
          const { data: result, errors } = message.payload ?? {};
          if (errors?.length) return retryOrFail(streamError(errors));
          const event = result?.conversationEvents;
          if (!event) return;
          retries = 0;
          cursor = event.cursor;
          onEvent(event);
          return;
        }
        case 'error':
          return retryOrFail(streamError(message.payload));
        case 'complete':
          // The server ended the stream while we still wait for the turn: resume after the last cursor.
          if (!closed) retryOrFail(new StreamError('The server ended the event stream', 'STREAM_ENDED'));
          return;
        default:
          return;
      }
    });

    current.addEventListener('close', ({ code, reason }) => {
      clearTimeout(ackTimer);
      if (closed || current !== socket) return;
      const message = `The event stream closed (${code}${reason ? `: ${reason}` : ''})`;
      retryOrFail(new StreamError(message, `CLOSE_${code}`, !FATAL_CLOSE_CODES.has(code)));
    });
  }

  // Private: starts again after the last cursor, on a new socket, unless the error is final or
  // too many attempts in a row failed.
  function retryOrFail(error) {
    if (closed) return;
    if (!error.retryable || retries >= MAX_RETRIES) return fail(error);
    const delay = 500 * 2 ** retries;
    retries += 1;
    const old = socket;
    socket = null;
    old?.close(1000, 'Resubscribing');
    setTimeout(() => closed || connect(), delay);
  }

  function fail(error) {
    if (closed) return;
    close();
    onError(error);
  }

  function close() {
    if (closed) return;
    closed = true;
    clearTimeout(ackTimer);
    if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ id: String(subscriptionId), type: 'complete' }));
    socket?.close(1000, 'Done');
  }

  connect();
  return { close };
}

/** A failure of the event stream; `retryable` when resubscribing after the last cursor may help. */
export class StreamError extends Error {
  constructor(message, code, retryable = true) {
    super(message);
    this.name = 'StreamError';
    this.code = code;
    this.retryable = retryable;
  }
}

// Private: GraphQL errors of the subscription. A slow consumer is told to resume; anything else
// (not found, unauthenticated, a bad query) will not get better by trying again.
function streamError(errors) {
  const [first] = Array.isArray(errors) ? errors : [];
  const code = first?.extensions?.code ?? 'ERROR';
  return new StreamError(first?.message ?? 'The event stream failed', code, code === 'SLOW_CONSUMER');
}

// Private: `/graphql` of this page's host, over ws: or wss: as the page came.
function socketUrl() {
  return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/graphql`;
}
