/** One tool call the agent made during a turn, stored with the assistant message it belongs to. */

import type { Ref } from '@mikro-orm/core';
import { Entity, Index, ManyToOne, PrimaryKey, Property } from '@mikro-orm/decorators/legacy';
import { Conversation } from './Conversation.js';
import { newId } from './ids.js';
import { Message } from './Message.js';

@Entity()
@Index({ name: 'tool_call_message_idx', properties: ['message', 'id'] })
@Index({ name: 'tool_call_conversation_idx', properties: ['conversation', 'id'] })
export class ToolCall {
  @PrimaryKey({ type: 'uuid' })
  id: string = newId();

  @ManyToOne(() => Message, { ref: true, deleteRule: 'cascade' })
  message: Ref<Message>;

  @ManyToOne(() => Conversation, { ref: true, deleteRule: 'cascade' })
  conversation: Ref<Conversation>;

  @Property({ type: 'text' })
  userId: string;

  /** The provider's id for the call (`call_…`), as the model sent it. */
  @Property({ type: 'text' })
  callId: string;

  @Property({ type: 'text' })
  server: string;

  @Property({ type: 'text' })
  name: string;

  @Property({ type: 'jsonb' })
  arguments: unknown;

  @Property({ type: 'jsonb', nullable: true })
  result: unknown = null;

  @Property({ type: 'boolean' })
  isError = false;

  @Property({ type: 'datetime' })
  startedAt: Date;

  @Property({ type: 'integer' })
  durationMs: number;

  constructor(init: {
    message: Ref<Message>;
    conversation: Ref<Conversation>;
    userId: string;
    callId: string;
    server: string;
    name: string;
    arguments: unknown;
    result: unknown;
    isError: boolean;
    startedAt: Date;
    durationMs: number;
  }) {
    this.message = init.message;
    this.conversation = init.conversation;
    this.userId = init.userId;
    this.callId = init.callId;
    this.server = init.server;
    this.name = init.name;
    this.arguments = init.arguments;
    this.result = init.result;
    this.isError = init.isError;
    this.startedAt = init.startedAt;
    this.durationMs = init.durationMs;
  }
}
