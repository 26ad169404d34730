/**
 * The page's GraphQL client over HTTP: one `POST /graphql` per operation, the bearer token in
 * `Authorization`. Every operation the page uses is written out here, so that this file is the
 * whole of what the page asks of the server (besides the event subscription of `stream.js`).
 */

/** An error the API answered, with its `extensions.code` (`UNAUTHENTICATED`, `CONVERSATION_BUSY`, …). */
export class ApiError extends Error {
  /**
   * @param {string} message
   * @param {string} code
   */
  constructor(message, code) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
  }
}

const TOOL_CALL_FIELDS = 'id callId server name arguments result isError durationMs';
const MESSAGE_FIELDS = `id seq role content status createdAt toolCalls { ${TOOL_CALL_FIELDS} }`;
const CONVERSATION_FIELDS = 'id title lastMessageAt messageCount';

const VIEWER = 'query Viewer { viewer { id } }';

const CONVERSATIONS = `query Conversations($first: Int!, $after: String) {
  conversations(first: $first, after: $after) {
    edges { node { ${CONVERSATION_FIELDS} } }
    pageInfo { hasNextPage endCursor }
  }
}`;

const CONVERSATION = `query Conversation($id: ID!) { conversation(id: $id) { ${CONVERSATION_FIELDS} } }`;

const MESSAGES = `query Messages($id: ID!, $last: Int!, $before: String) {
  conversation(id: $id) {
    ${CONVERSATION_FIELDS}
    messages(last: $last, before: $before) {
      edges { node { ${MESSAGE_FIELDS} } }
      pageInfo { hasPreviousPage startCursor }
    }
  }
}`;

/** The turn as it is today: the answer comes once the reply is stored. */
const SEND_AND_WAIT = `mutation Send($input: SendMessageInput!) {
  sendMessage(input: $input) {
    conversation { ${CONVERSATION_FIELDS} }
    userMessage { ${MESSAGE_FIELDS} }
    assistantMessage { ${MESSAGE_FIELDS} }
  }
}`;

/** The streamed turn: the answer comes at once, with the cursor to subscribe after. */
const SEND_AND_STREAM = `mutation SendStreamed($input: SendMessageInput!) {
  sendMessage(input: $input) {
    conversation { ${CONVERSATION_FIELDS} }
    userMessage { ${MESSAGE_FIELDS} }
    assistantMessage { id }
    eventCursor
  }
}`;

/** Whether the server streams turns: it has `Subscription.conversationEvents` and `SendMessageInput.wait`. */
const STREAMING = `query Streaming {
  subscription: __type(name: "Subscription") { fields { name } }
  input: __type(name: "SendMessageInput") { inputFields { name } }
}`;

/** A GraphQL client acting with `token`. */
export function createApi(token) {
  async function request(query, variables = {}) {
    let response;
    try {
      response = await fetch('/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query, variables }),
      });
    } catch (error) {
      throw new ApiError(`The server cannot be reached (${error.message})`, 'NETWORK_ERROR');
    }
    let body;
    try {
      body = await response.json();
    } catch {
      throw new ApiError(`The server answered ${response.status} without a GraphQL answer`, 'BAD_RESPONSE');
    }
    const [first] = body.errors ?? [];
    if (first) throw new ApiError(first.message, first.extensions?.code ?? 'ERROR');
    return body.data;
  }

  return {
    /**
     * True when the server streams turns, false when it does not, null when it will not say
     * (introspection off, as in production): then the first send finds out.
     */
    async streams() {
      try {
        const { subscription, input } = await request(STREAMING);
        const has = (fields, name) => (fields ?? []).some((field) => field.name === name);
        return has(subscription?.fields, 'conversationEvents') && has(input?.inputFields, 'wait');
      } catch {
        return null;
      }
    },

    /** The user of the token; throws `UNAUTHENTICATED` for a bad one. */
    viewer: async () => (await request(VIEWER)).viewer,

    /** A page of the viewer's conversations, most recent activity first. */
    conversations: async ({ first = 20, after = null } = {}) => (await request(CONVERSATIONS, { first, after })).conversations,

    /** The conversation's title and times (null: unknown, or another user's). */
    conversation: async (id) => (await request(CONVERSATION, { id })).conversation,

    /** The conversation and a page of its messages, the newest ones (or those before `before`), oldest first. */
    messages: async (id, { last = 20, before = null } = {}) => (await request(MESSAGES, { id, last, before })).conversation,

    /** Sends a message and waits for the whole reply. `conversationId` null: a new conversation. */
    sendAndWait: async (conversationId, message) => (await request(SEND_AND_WAIT, { input: { conversationId, message } })).sendMessage,

    /**
     * Sends a message without waiting for the reply: its events stream from `eventCursor` on.
     * A server without streaming refuses the document (`GRAPHQL_VALIDATION_FAILED`) and runs nothing.
     */
    sendAndStream: async (conversationId, message) =>
      (await request(SEND_AND_STREAM, { input: { conversationId, message, wait: false } })).sendMessage,
  };
}
