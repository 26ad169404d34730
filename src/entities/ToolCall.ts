/** One tool call the agent made during a turn, stored with the assistant message it belongs to. */

import { PrimaryKeyProp, type Ref } from '@mikro-orm/core';
import { Entity, Index, ManyToOne, PrimaryKey, Property } from '@mikro-orm/decorators/legacy';
import { Conversation } from './Conversation.js';
import { newId } from './ids.js';
import { Message } from './Message.js';

@Entity()
@Index({ name: 'tool_call_message_idx', properties: ['message', 'id'] })
@Index({ name: 'tool_call_conversation_idx', properties: ['conversation', 'id'] })
export class ToolCall {
  [PrimaryKeyProp]?: ['userId', 'id'];

  @PrimaryKey({ type: 'text' })
  userId: string;

  @PrimaryKey({ type: 'uuid' })
  id: string = newId();

  // Both share the call's own `user_id`.
  @ManyToOne(() => Message, { ref: true, deleteRule: 'cascade', updateRule: 'no action', joinColumns: ['user_id', 'message_id'] })
  message: Ref<Message>;

  @ManyToOne(() => Conversation, { ref: true, deleteRule: 'cascade', updateRule: 'no action', joinColumns: ['user_id', 'conversation_id'] })
  conversation: Ref<Conversation>;

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
