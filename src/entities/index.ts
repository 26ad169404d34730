export { type ArchiveLocation, Conversation, ConversationStatus } from './Conversation.js';
export { ConversationEvent } from './ConversationEvent.js';
export { Message, MessageRole, MessageStatus } from './Message.js';
export { RateCounter, RateKind } from './RateCounter.js';
export { Task } from './Task.js';
export { ToolCall } from './ToolCall.js';
export { TurnWaiter } from './TurnWaiter.js';

import { Conversation } from './Conversation.js';
import { ConversationEvent } from './ConversationEvent.js';
import { Message } from './Message.js';
import { RateCounter } from './RateCounter.js';
import { Task } from './Task.js';
import { ToolCall } from './ToolCall.js';
import { TurnWaiter } from './TurnWaiter.js';

/** Every entity, for the ORM's discovery. */
export const entities = [Conversation, Message, ToolCall, Task, TurnWaiter, RateCounter, ConversationEvent];
