/**
 * A request waiting (`ifBusy: ENQUEUE`) for the running turn of a conversation to end. The id is
 * its ticket: ids grow in arrival order, and the live waiter with the smallest id goes next. A
 * waiter keeps `expiresAt` in the future while it waits; one whose process died simply expires.
 */

import type { Ref } from '@mikro-orm/core';
import { Entity, Index, ManyToOne, PrimaryKey, Property } from '@mikro-orm/decorators/legacy';
import { Conversation } from './Conversation.js';

@Entity()
@Index({ name: 'turn_waiter_queue_idx', properties: ['conversation', 'id'] })
export class TurnWaiter {
  @PrimaryKey({ type: 'bigint', autoincrement: true })
  id!: string;

  @ManyToOne(() => Conversation, { ref: true, deleteRule: 'cascade' })
  conversation: Ref<Conversation>;

  @Property({ type: 'text' })
  userId: string;

  @Property({ type: 'datetime' })
  expiresAt: Date;

  constructor(conversation: Ref<Conversation>, userId: string, expiresAt: Date) {
    this.conversation = conversation;
    this.userId = userId;
    this.expiresAt = expiresAt;
  }
}
