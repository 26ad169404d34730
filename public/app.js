/**
 * The chat page: sign in with a bearer token, browse the viewer's conversations and their
 * messages, send a message and watch the reply come in. It uses the public API only: `api.js`
 * for queries and mutations, `stream.js` for a turn's events when the server streams them.
 *
 * What it keeps: the token in `sessionStorage` (this tab only), the open conversation in the
 * URL's hash (a reload opens it again). Everything else is asked of the server.
 */
import { ApiError, createApi } from './api.js';
import { subscribeToConversation } from './stream.js';
import {
  appendMessageText,
  conversationItem,
  findToolCall,
  finishToolCall,
  messageItem,
  setMessageStatus,
  setMessageText,
  toolCallItem,
  updateConversationItem,
} from './view.js';

const TOKEN_KEY = 'stateless-chat.token';
const CONVERSATIONS_PAGE = 20;
const MESSAGES_PAGE = 20;
/** Pixels from the top of the messages at which older ones are loaded. */
const LOAD_OLDER_AT = 80;

const $ = (id) => document.getElementById(id);
const ui = {
  signIn: $('sign-in'),
  token: $('token'),
  signedIn: $('signed-in'),
  viewerId: $('viewer-id'),
  signOut: $('sign-out'),
  status: $('status'),
  workspace: $('workspace'),
  newConversation: $('new-conversation'),
  conversations: $('conversations'),
  moreConversations: $('more-conversations'),
  title: $('conversation-title'),
  messages: $('messages'),
  olderMessages: $('older-messages'),
  messageList: $('message-list'),
  composer: $('composer'),
  message: $('message'),
  send: $('send'),
};

const state = {
  api: null,
  token: null,
  /** Whether the server streams turns (asked at sign-in); null: unknown until the first send finds out. */
  streaming: null,
  /** The end cursor of the conversations listed, and whether there are more. */
  conversationsAfter: null,
  /** The open conversation (null: a new one, made by the first message). */
  conversationId: null,
  /** The start cursor of the messages shown, and whether older ones exist. */
  olderBefore: null,
  hasOlder: false,
  loadingOlder: false,
  /** Bumped on every switch of conversation, so that an answer for one shown before is dropped. */
  view: 0,
  sending: false,
};

// ---- signing in ----

async function signIn(token) {
  const api = createApi(token);
  const viewer = await api.viewer();
  Object.assign(state, { api, token, streaming: await api.streams() });
  document.body.dataset.streaming = String(state.streaming);
  sessionStorage.setItem(TOKEN_KEY, token);
  ui.viewerId.textContent = viewer.id;
  ui.signIn.hidden = true;
  ui.workspace.hidden = false;
  showStatus('');
  // Nothing can be sent before the conversation to send in is shown.
  setComposerEnabled(false);
  try {
    await loadConversations({ reset: true });
    const fromHash = new URLSearchParams(location.hash.slice(1)).get('c');
    if (fromHash) await openConversation(fromHash);
    else startNewConversation();
  } finally {
    setComposerEnabled(true);
    ui.signedIn.hidden = false;
    ui.message.focus();
  }
}

function setComposerEnabled(enabled) {
  ui.message.disabled = !enabled;
  ui.send.disabled = !enabled;
}

function signOut(reason = '') {
  sessionStorage.removeItem(TOKEN_KEY);
  Object.assign(state, { api: null, token: null, conversationId: null, view: state.view + 1 });
  ui.conversations.replaceChildren();
  ui.messageList.replaceChildren();
  ui.workspace.hidden = true;
  ui.signedIn.hidden = true;
  ui.signIn.hidden = false;
  ui.token.value = '';
  history.replaceState(null, '', location.pathname);
  showStatus(reason, reason ? 'error' : 'info');
}

// ---- conversations ----

async function loadConversations({ reset = false } = {}) {
  const page = await state.api.conversations({ first: CONVERSATIONS_PAGE, after: reset ? null : state.conversationsAfter });
  if (reset) ui.conversations.replaceChildren();
  for (const { node } of page.edges) {
    if (!findConversationItem(node.id)) ui.conversations.append(conversationItem(node, openFromList));
  }
  state.conversationsAfter = page.pageInfo.endCursor;
  ui.moreConversations.hidden = !page.pageInfo.hasNextPage;
  markOpenConversation();
}

/** Puts `conversation` first in the list (it has the latest activity), adding it when new. */
function bringConversationToTop(conversation) {
  let item = findConversationItem(conversation.id);
  if (item) updateConversationItem(item, conversation);
  else item = conversationItem(conversation, openFromList);
  ui.conversations.prepend(item);
  markOpenConversation();
}

/** A click in the list: opens the conversation, showing what went wrong if it cannot. */
function openFromList(id) {
  guarded(openConversation)(id);
}

function findConversationItem(id) {
  return [...ui.conversations.children].find((item) => item.dataset.conversationId === id);
}

function markOpenConversation() {
  for (const item of ui.conversations.children) {
    const button = item.querySelector('button');
    if (item.dataset.conversationId === state.conversationId) button.setAttribute('aria-current', 'true');
    else button.removeAttribute('aria-current');
  }
}

function startNewConversation() {
  Object.assign(state, { conversationId: null, olderBefore: null, hasOlder: false, view: state.view + 1 });
  history.replaceState(null, '', location.pathname);
  ui.title.textContent = 'New conversation';
  ui.messageList.replaceChildren();
  ui.olderMessages.hidden = true;
  markOpenConversation();
  ui.message.focus();
}

// ---- messages ----

/** Shows conversation `id`: its newest messages, at the bottom; older ones load on scrolling up. */
async function openConversation(id) {
  const view = ++state.view;
  Object.assign(state, { conversationId: id, olderBefore: null, hasOlder: false });
  history.replaceState(null, '', `#c=${encodeURIComponent(id)}`);
  markOpenConversation();
  ui.messageList.replaceChildren();
  const conversation = await state.api.messages(id, { last: MESSAGES_PAGE });
  if (view !== state.view) return;
  if (!conversation) {
    showStatus('That conversation does not exist (or is not yours).', 'error');
    return startNewConversation();
  }
  ui.title.textContent = conversation.title?.trim() || 'Untitled conversation';
  ui.messageList.append(...conversation.messages.edges.map(({ node }) => messageItem(node)));
  setOlder(conversation.messages.pageInfo);
  scrollToBottom();
}

/** Loads the page of messages before the first one shown, keeping what is on screen in place. */
async function loadOlderMessages() {
  if (!state.hasOlder || state.loadingOlder || !state.conversationId) return;
  const view = state.view;
  state.loadingOlder = true;
  try {
    const conversation = await state.api.messages(state.conversationId, { last: MESSAGES_PAGE, before: state.olderBefore });
    if (view !== state.view || !conversation) return;
    const fromBottom = ui.messages.scrollHeight - ui.messages.scrollTop;
    ui.messageList.prepend(...conversation.messages.edges.map(({ node }) => messageItem(node)));
    ui.messages.scrollTop = ui.messages.scrollHeight - fromBottom;
    setOlder(conversation.messages.pageInfo);
  } finally {
    state.loadingOlder = false;
  }
}

function setOlder(pageInfo) {
  state.olderBefore = pageInfo.startCursor;
  state.hasOlder = pageInfo.hasPreviousPage;
  ui.olderMessages.hidden = !state.hasOlder;
}

function scrollToBottom() {
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

// ---- sending ----

/** Sends `text` in the open conversation (or a new one) and shows the reply as it comes. */
async function send(text) {
  const pending = messageItem({ role: 'USER', content: text, status: 'IN_PROGRESS' });
  ui.messageList.append(pending);
  scrollToBottom();
  try {
    if (state.streaming !== false) {
      try {
        await sendStreamed(text, pending);
        state.streaming = true;
        return;
      } catch (error) {
        // A server that does not stream refuses the document before running anything.
        if (!(error instanceof ApiError && error.code === 'GRAPHQL_VALIDATION_FAILED' && state.streaming === null)) throw error;
        state.streaming = false;
      }
    }
    await sendAndWait(text, pending);
  } finally {
    document.body.dataset.streaming = String(state.streaming);
  }
}

async function sendAndWait(text, pending) {
  const sent = await state.api.sendAndWait(state.conversationId, text);
  adoptConversation(sent.conversation);
  pending.replaceWith(messageItem(sent.userMessage));
  ui.messageList.append(messageItem(sent.assistantMessage));
  scrollToBottom();
  await refreshConversation(sent.conversation.id);
}

async function sendStreamed(text, pending) {
  const sent = await state.api.sendAndStream(state.conversationId, text);
  adoptConversation(sent.conversation);
  pending.replaceWith(messageItem(sent.userMessage));
  const reply = messageItem({ id: sent.assistantMessage.id, role: 'ASSISTANT', content: '', status: 'IN_PROGRESS' });
  reply.dataset.textDeltas = '0';
  ui.messageList.append(reply);
  scrollToBottom();
  await streamTurn(sent.conversation.id, sent.eventCursor, reply);
  await refreshConversation(sent.conversation.id);
}

/**
 * Follows the turn writing `reply` through the conversation's events, from `after`, until it
 * ends; the reply's element shows each event as it comes, and how it ended (the message sent is
 * stored whatever happens here, so a failure is shown on the reply, not thrown).
 */
function streamTurn(conversationId, after, reply) {
  const messageId = reply.dataset.messageId;
  return new Promise((resolve) => {
    const stream = subscribeToConversation({
      token: state.token,
      conversationId,
      after,
      onError: (error) => {
        setMessageStatus(reply, 'FAILED', `The reply stopped streaming: ${error.message}. Reload to see it once stored.`);
        resolve();
      },
      onEvent: (event) => {
        if (event.messageId !== messageId) return;
        const stickToBottom = isAtBottom();
        applyEvent(reply, event);
        if (stickToBottom) scrollToBottom();
        if (event.type === 'TURN_COMPLETED' || event.type === 'TURN_FAILED') {
          stream.close();
          resolve();
        }
      },
    });
  });
}

/** Shows one event of the turn in its reply. */
function applyEvent(reply, event) {
  switch (event.type) {
    case 'TURN_STARTED':
      // A turn taken over after a crash writes its reply again from the start.
      setMessageText(reply, '');
      reply.querySelector('.tool-calls').replaceChildren();
      setMessageStatus(reply, 'IN_PROGRESS');
      return;
    case 'TEXT_DELTA':
      appendMessageText(reply, event.text);
      reply.dataset.textDeltas = String(Number(reply.dataset.textDeltas ?? 0) + 1);
      return;
    case 'TOOL_CALL_STARTED':
      if (!findToolCall(reply, event.callId)) reply.querySelector('.tool-calls').append(toolCallItem(event));
      return;
    case 'TOOL_CALL_FINISHED': {
      const item = findToolCall(reply, event.toolCall.callId);
      if (item) finishToolCall(item, event.toolCall);
      else reply.querySelector('.tool-calls').append(toolCallItem(event.toolCall));
      return;
    }
    case 'TURN_COMPLETED':
      setMessageText(reply, event.message.content);
      setMessageStatus(reply, event.message.status);
      return;
    case 'TURN_FAILED':
      setMessageStatus(reply, 'FAILED', `The turn failed (${event.code}): ${event.error}`);
      return;
    default:
      return;
  }
}

/** After a send: the conversation (maybe just made) is the open one, and first in the list. */
function adoptConversation(conversation) {
  if (state.conversationId !== conversation.id) {
    state.conversationId = conversation.id;
    history.replaceState(null, '', `#c=${encodeURIComponent(conversation.id)}`);
  }
  ui.title.textContent = conversation.title?.trim() || 'Untitled conversation';
  bringConversationToTop(conversation);
}

/** Shows the conversation's title and time as they are after a turn (the first turn titles it). */
async function refreshConversation(id) {
  const conversation = await state.api.conversation(id);
  if (!conversation) return;
  const item = findConversationItem(id);
  if (item) updateConversationItem(item, conversation);
  if (state.conversationId === id) ui.title.textContent = conversation.title?.trim() || 'Untitled conversation';
}

function isAtBottom() {
  return ui.messages.scrollHeight - ui.messages.scrollTop - ui.messages.clientHeight < 40;
}

// ---- status and errors ----

function showStatus(text, kind = 'info') {
  ui.status.textContent = text;
  ui.status.dataset.kind = kind;
  ui.status.hidden = text === '';
}

/** Runs `action`, showing what went wrong; a token no longer accepted signs out. */
function guarded(action) {
  return async (...args) => {
    try {
      await action(...args);
    } catch (error) {
      if (error instanceof ApiError && error.code === 'UNAUTHENTICATED' && state.api) return signOut(`Signed out: ${error.message}`);
      showStatus(error instanceof ApiError ? `${error.message} (${error.code})` : String(error.message ?? error), 'error');
    }
  };
}

// ---- wiring ----

ui.signIn.addEventListener(
  'submit',
  guarded(async (event) => {
    event.preventDefault();
    try {
      await signIn(ui.token.value.trim());
    } catch (error) {
      sessionStorage.removeItem(TOKEN_KEY);
      throw error;
    }
  }),
);
ui.signOut.addEventListener('click', () => signOut());
ui.newConversation.addEventListener('click', () => startNewConversation());
ui.moreConversations.addEventListener(
  'click',
  guarded(() => loadConversations()),
);
ui.olderMessages.addEventListener('click', guarded(loadOlderMessages));
ui.messages.addEventListener(
  'scroll',
  guarded(async () => {
    if (ui.messages.scrollTop < LOAD_OLDER_AT) await loadOlderMessages();
  }),
);
ui.composer.addEventListener(
  'submit',
  guarded(async (event) => {
    event.preventDefault();
    const text = ui.message.value.trim();
    if (!text || state.sending) return;
    state.sending = true;
    ui.send.disabled = true;
    ui.message.value = '';
    showStatus('');
    try {
      await send(text);
    } catch (error) {
      // Nothing was sent (or the turn failed): the text comes back for another try.
      ui.messageList.querySelector('.message.user[data-status="IN_PROGRESS"]')?.remove();
      if (!ui.message.value) ui.message.value = text;
      throw error;
    } finally {
      state.sending = false;
      ui.send.disabled = false;
      ui.message.focus();
    }
  }),
);
// Enter sends, Shift+Enter starts a new line.
ui.message.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    ui.composer.requestSubmit();
  }
});
window.addEventListener('hashchange', () => {
  const id = new URLSearchParams(location.hash.slice(1)).get('c');
  if (state.api && id && id !== state.conversationId) guarded(openConversation)(id);
});

// The token of this tab, else the dev token the server put in the page (loopback only), to prefill.
const saved = sessionStorage.getItem(TOKEN_KEY);
const devToken = document.querySelector('meta[name="dev-token"]')?.content;
if (saved) {
  ui.token.value = saved;
  guarded(signIn)(saved);
} else if (devToken) {
  ui.token.value = devToken;
}
