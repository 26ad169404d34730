/**
 * One event of a conversation's stream (`chat/events.ts`): the record subscribers read back when
 * they resume, and what each instance reads when told (NOTIFY) that events were stored. Positions
 * are gapless per conversation, taken from `conversation.event_seq` by the statement that inserts
 * the event. A finished tool call and a completed reply are referenced by id, not copied.
 */

import { PrimaryKeyProp, type Ref } from '@mikro-orm/core';
import { Entity, Enum, ManyToOne, PrimaryKey, Property, Unique } from '@mikro-orm/decorators/legacy';
import { ConversationEventKind } from '../chat/events.js';
import { Conversation } from './Conversation.js';
import { newId } from './ids.js';

@Entity()
@Unique({ name: 'conversation_event_position_unique', properties: ['conversation', 'position'] })
export class ConversationEvent {
  [PrimaryKeyProp]?: ['userId', 'id'];

  @PrimaryKey({ type: 'text' })
  userId!: string;

  @PrimaryKey({ type: 'uuid' })
  id: string = newId();

  // Its `user_id` is the event's own.
  @ManyToOne(() => Conversation, { ref: true, deleteRule: 'cascade', updateRule: 'no action', joinColumns: ['user_id', 'conversation_id'] })
  conversation!: Ref<Conversation>;

  @Property({ type: 'integer' })
  position!: number;

  @Enum({ items: () => ConversationEventKind, nativeEnumName: 'conversation_event_kind' })
  kind!: ConversationEventKind;

  @Property({ type: 'uuid' })
  turnId!: string;

  /** The reply of the turn. Ids, not foreign keys: a purge deletes a conversation's events with its messages. */
  @Property({ type: 'uuid' })
  messageId!: string;

  /** TEXT_DELTA: the text appended. */
  @Property({ type: 'text', nullable: true })
  text: string | null = null;

  /** TURN_STARTED's user message id, TOOL_CALL_STARTED's call, TURN_FAILED's error. */
  @Property({ type: 'jsonb', nullable: true })
  data: unknown = null;

  /** TOOL_CALL_FINISHED: the stored call. */
  @Property({ type: 'uuid', nullable: true })
  toolCallId: string | null = null;

  @Property({ type: 'datetime', length: 3 })
  createdAt: Date = new Date();
}
