/**
 * The page's DOM pieces: a conversation in the list, a message, a tool call. Everything that
 * comes from the server is put in with `textContent` (never parsed as HTML), so a message or a
 * tool result that holds markup shows as the text it is.
 */

/**
 * An element: `tag` with `props` set as its properties (`className`, `textContent`, `hidden`, …;
 * `dataset` merged into its `data-` attributes) and `children` (elements, or strings added as text).
 */
export function h(tag, props = {}, ...children) {
  const { dataset, ...rest } = props;
  const element = Object.assign(document.createElement(tag), rest);
  Object.assign(element.dataset, dataset);
  element.append(...children.filter((child) => child !== null && child !== undefined));
  return element;
}

/** A conversation of the list: a button that opens it. */
export function conversationItem(conversation, onOpen) {
  const button = h(
    'button',
    { type: 'button', className: 'conversation' },
    h('span', { className: 'conversation-name', textContent: titleOf(conversation) }),
    h('time', {
      className: 'conversation-time',
      textContent: shortTime(conversation.lastMessageAt),
      dateTime: conversation.lastMessageAt,
    }),
  );
  button.addEventListener('click', () => onOpen(conversation.id));
  return h('li', { dataset: { conversationId: conversation.id } }, button);
}

/** Puts `conversation`'s current title and time into its list item. */
export function updateConversationItem(item, conversation) {
  item.querySelector('.conversation-name').textContent = titleOf(conversation);
  const time = item.querySelector('.conversation-time');
  time.textContent = shortTime(conversation.lastMessageAt);
  time.dateTime = conversation.lastMessageAt;
}

/**
 * A message: its role, its text and, for an assistant message, its tool calls. `message` is the
 * API's `Message` (`id role content status toolCalls`); a reply in progress starts empty.
 */
export function messageItem(message) {
  const role = message.role.toLowerCase();
  const item = h(
    'li',
    { className: `message ${role}`, dataset: { messageId: message.id ?? '', role, status: message.status ?? 'COMPLETE' } },
    h('div', { className: 'role', textContent: role === 'user' ? 'You' : role === 'assistant' ? 'Assistant' : role }),
    h('ol', { className: 'tool-calls' }),
    h('div', { className: 'content', textContent: message.content ?? '' }),
    h('div', { className: 'note', hidden: true }),
  );
  for (const call of message.toolCalls ?? []) item.querySelector('.tool-calls').append(toolCallItem(call));
  return item;
}

/** Replaces the text of a message (a reply in progress, or its final content). */
export function setMessageText(item, text) {
  item.querySelector('.content').textContent = text;
}

/** Adds `text` to the end of a reply in progress. */
export function appendMessageText(item, text) {
  item.querySelector('.content').append(text);
}

/** Marks a message `status` (`IN_PROGRESS`, `COMPLETE`, `FAILED`) with an optional note under it. */
export function setMessageStatus(item, status, note = '') {
  item.dataset.status = status;
  const noteElement = item.querySelector('.note');
  noteElement.textContent = note;
  noteElement.hidden = note === '';
}

/**
 * A tool call: its name and arguments, and its result once it has one. `call` is a stored
 * `ToolCall`, or a call just started (`callId server name arguments`, no result yet).
 */
export function toolCallItem(call) {
  const item = h(
    'li',
    { className: 'tool-call', dataset: { callId: call.callId, name: call.name, state: 'running' } },
    h(
      'details',
      { open: true },
      h(
        'summary',
        {},
        h('span', { className: 'tool-name', textContent: call.server ? `${call.server} / ${call.name}` : call.name }),
        h('span', { className: 'tool-state', textContent: 'running…' }),
      ),
      h('div', { className: 'tool-label', textContent: 'arguments' }),
      h('pre', { className: 'tool-arguments', textContent: json(call.arguments) }),
      h('div', { className: 'tool-label', textContent: 'result' }),
      h('pre', { className: 'tool-result', textContent: '' }),
    ),
  );
  if ('result' in call) finishToolCall(item, call);
  return item;
}

/** Shows the result of a finished tool call (its stored record) in its item. */
export function finishToolCall(item, toolCall) {
  item.dataset.state = toolCall.isError ? 'error' : 'done';
  item.querySelector('.tool-arguments').textContent = json(toolCall.arguments);
  item.querySelector('.tool-result').textContent = json(toolCall.result);
  const state = toolCall.isError ? 'failed' : 'done';
  item.querySelector('.tool-state').textContent = typeof toolCall.durationMs === 'number' ? `${state}, ${toolCall.durationMs} ms` : state;
}

/** The tool call item of `callId` in a message, if it is there. */
export function findToolCall(messageElement, callId) {
  return [...messageElement.querySelectorAll('.tool-call')].find((item) => item.dataset.callId === callId);
}

function titleOf(conversation) {
  return conversation.title?.trim() || 'Untitled conversation';
}

// Private: JSON as people read it; a tool result that is a JSON string in a string is shown parsed.
function json(value) {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') {
    try {
      return JSON.stringify(JSON.parse(value), null, 2);
    } catch {
      return value;
    }
  }
  return JSON.stringify(value, null, 2);
}

// Private: a time of today as hh:mm, an older one as its date.
function shortTime(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  const today = new Date().toDateString() === date.toDateString();
  return today ? date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : date.toLocaleDateString();
}
