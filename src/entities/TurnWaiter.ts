/**
 * A request waiting (`ifBusy: ENQUEUE`) for the running turn of a conversation to end. The id is
 * its ticket. `arrivedAt` is when the request reached its instance (that instance's clock:
 * instances are assumed to keep time, as NTP does, within a few milliseconds of each other): the
 * live waiter that arrived first goes next (ids break ties). A
 * waiter keeps `expiresAt` in the future while it waits; one whose process died simply expires.
 */

import { PrimaryKeyProp, type Ref } from '@mikro-orm/core';
import { Entity, Index, ManyToOne, PrimaryKey, Property } from '@mikro-orm/decorators/legacy';
import { Conversation } from './Conversation.js';

@Entity()
@Index({ name: 'turn_waiter_queue_idx', properties: ['conversation', 'arrivedAt', 'id'] })
export class TurnWaiter {
  [PrimaryKeyProp]?: ['userId', 'id'];

  @PrimaryKey({ type: 'text' })
  userId: string;

  @PrimaryKey({ type: 'bigint', autoincrement: true })
  id!: string;

  // Its `user_id` is the waiter's own.
  @ManyToOne(() => Conversation, { ref: true, deleteRule: 'cascade', updateRule: 'no action', joinColumns: ['user_id', 'conversation_id'] })
  conversation: Ref<Conversation>;

  @Property({ type: 'datetime' })
  expiresAt: Date;

  /** When the request reached its instance (the database's `now()` when not given). */
  @Property({ type: 'datetime', defaultRaw: 'now()' })
  arrivedAt?: Date;

  constructor(conversation: Ref<Conversation>, userId: string, expiresAt: Date) {
    this.conversation = conversation;
    this.userId = userId;
    this.expiresAt = expiresAt;
  }
}
