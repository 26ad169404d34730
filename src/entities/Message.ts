/** One message of a conversation, ordered by its per-conversation `seq`. */

import { PrimaryKeyProp, type Ref } from '@mikro-orm/core';
import { Entity, Enum, ManyToOne, PrimaryKey, Property, Unique } from '@mikro-orm/decorators/legacy';
import { searchLanguageOf } from '../db/settings.js';
import { Conversation } from './Conversation.js';
import { newId } from './ids.js';

export enum MessageRole {
  USER = 'user',
  ASSISTANT = 'assistant',
  SYSTEM = 'system',
  TOOL = 'tool',
}

export enum MessageStatus {
  COMPLETE = 'complete',
  IN_PROGRESS = 'in_progress',
  FAILED = 'failed',
}

@Entity()
@Unique({ name: 'message_conversation_seq_unique', properties: ['conversation', 'seq'] })
@Unique({ name: 'message_user_client_message_id_unique', properties: ['userId', 'clientMessageId'] })
export class Message {
  [PrimaryKeyProp]?: ['userId', 'id'];

  @PrimaryKey({ type: 'text' })
  userId: string;

  @PrimaryKey({ type: 'uuid' })
  id: string = newId();

  // Its `user_id` is the message's own.
  @ManyToOne(() => Conversation, { ref: true, deleteRule: 'cascade', updateRule: 'no action', joinColumns: ['user_id', 'conversation_id'] })
  conversation: Ref<Conversation>;

  @Property({ type: 'integer' })
  seq: number;

  @Enum({ items: () => MessageRole, nativeEnumName: 'message_role' })
  role: MessageRole;

  @Property({ type: 'text' })
  content: string;

  @Enum({ items: () => MessageStatus, nativeEnumName: 'message_status' })
  status: MessageStatus = MessageStatus.COMPLETE;

  /** The client's idempotency key for a user message; unique per user. */
  @Property({ type: 'text', nullable: true })
  clientMessageId: string | null = null;

  @Property({ type: 'text', nullable: true })
  model: string | null = null;

  @Property({ type: 'integer', nullable: true })
  promptTokens: number | null = null;

  @Property({ type: 'integer', nullable: true })
  completionTokens: number | null = null;

  @Property({ type: 'integer', nullable: true })
  totalTokens: number | null = null;

  @Property({ type: 'datetime' })
  createdAt: Date = new Date();

  /**
   * Full-text search (`db/stores/search.ts`): the text search configuration the message is indexed
   * with, and its stored tsvector (`to_tsvector(search_config, content)`, the database's own: a
   * generated column). The configuration is written with the message, from the ORM's
   * SEARCH_LANGUAGE (`db/settings.ts`), not left to the column's default (which reads a session
   * setting, lost through a transaction pooler); it is lazy, so that no read of a turn or a browse
   * carries it.
   */
  @Property({
    columnType: 'regconfig',
    lazy: true,
    hidden: true,
    onCreate: (_message: Message, em) => searchLanguageOf(em),
    defaultRaw: `coalesce(nullif(current_setting('stateless_chat.search_language', true), ''), 'simple')::regconfig`,
  })
  searchConfig?: string;

  @Property({ columnType: 'tsvector', persist: false, hidden: true })
  search?: string;

  constructor(init: {
    conversation: Ref<Conversation>;
    userId: string;
    seq: number;
    role: MessageRole;
    content: string;
    clientMessageId?: string | null;
  }) {
    this.conversation = init.conversation;
    this.userId = init.userId;
    this.seq = init.seq;
    this.role = init.role;
    this.content = init.content;
    this.clientMessageId = init.clientMessageId ?? null;
  }
}
