/**
 * A conversation of one user: its metadata, counters, token totals and the turn lease that
 * keeps one turn at a time running on it, across every server instance.
 */
import { PrimaryKeyProp } from '@mikro-orm/core';
import { Entity, Enum, Index, PrimaryKey, Property } from '@mikro-orm/decorators/legacy';
import { newId } from './ids.js';

/** The file of an archive run that holds a purged conversation, and how to check it. */
export type ArchiveLocation = { file: string; sha256: string; manifest: string };

export enum ConversationStatus {
  ACTIVE = 'active',
  ARCHIVED = 'archived',
  EXPIRED = 'expired',
}

@Entity()
@Index({ name: 'conversation_user_activity_idx', properties: ['userId', 'lastMessageAt', 'id'] })
@Index({ name: 'conversation_user_updated_idx', properties: ['userId', 'updatedAt', 'id'] })
@Index({ name: 'conversation_user_created_idx', properties: ['userId', 'createdAt', 'id'] })
// The sweeper's walks (`db/stores/retention.ts`), oldest activity first: the active conversations
// (to expire), and those not archived (to archive), each without passing over the others.
@Index({
  name: 'conversation_expire_idx',
  expression: `create index "conversation_expire_idx" on "conversation" ("last_message_at") where "status" = 'active'`,
})
@Index({
  name: 'conversation_archive_idx',
  expression: `create index "conversation_archive_idx" on "conversation" ("last_message_at") where "status" <> 'archived'`,
})
@Index({
  name: 'conversation_metadata_idx',
  expression: 'create index "conversation_metadata_idx" on "conversation" using gin ("metadata" jsonb_path_ops)',
})
export class Conversation {
  // The user first in every key of a user's rows, so that they can be distributed by user (docs/scaling.md):
  // a row refers to its conversation by `(user_id, conversation_id)`, with no `on update` action (Citus
  // refuses one on a key holding the distribution column; ids never change anyway).
  [PrimaryKeyProp]?: ['userId', 'id'];

  @PrimaryKey({ type: 'text' })
  userId: string;

  @PrimaryKey({ type: 'uuid' })
  id: string = newId();

  @Property({ type: 'text', nullable: true })
  title: string | null = null;

  @Enum({ items: () => ConversationStatus, nativeEnumName: 'conversation_status' })
  status: ConversationStatus = ConversationStatus.ACTIVE;

  @Property({ type: 'jsonb', nullable: true })
  metadata: Record<string, unknown> | null = null;

  // Milliseconds, the precision of a JavaScript date and of a listing's cursor: a key stored finer
  // than its cursor could be listed twice or skipped.
  @Property({ type: 'datetime', length: 3 })
  createdAt: Date = new Date();

  @Property({ type: 'datetime' })
  updatedAt: Date = new Date();

  @Property({ type: 'datetime', length: 3 })
  lastMessageAt: Date = new Date();

  @Property({ type: 'datetime', nullable: true })
  expiresAt: Date | null = null;

  @Property({ type: 'datetime', nullable: true })
  archivedAt: Date | null = null;

  /**
   * Set when an archive run took the messages and tool calls out of the database into its files
   * (`npm run cli -- archive --purge`); null again once `restore` put them back. The row stays,
   * ARCHIVED, with `archiveLocation` naming the file that holds them.
   */
  @Property({ type: 'datetime', nullable: true })
  purgedAt: Date | null = null;

  /** Where a purged conversation is: its archive file (relative to the archive directory) and that file's SHA-256. */
  @Property({ type: 'jsonb', nullable: true })
  archiveLocation: ArchiveLocation | null = null;

  @Property({ type: 'integer' })
  messageCount = 0;

  /** The `seq` the next message will take; `seq` is gapless per conversation. */
  @Property({ type: 'integer' })
  nextSeq = 1;

  /** The position of its last event (`conversation_event`); the next takes the one after. */
  @Property({ type: 'integer' })
  eventSeq = 0;

  /** The running turn, if any: its id and when its lease runs out. */
  @Property({ type: 'uuid', nullable: true })
  turnId: string | null = null;

  @Property({ type: 'datetime', nullable: true })
  leaseExpiresAt: Date | null = null;

  /**
   * How many `turn_waiter` rows the conversation has (live or expired), changed only together with
   * them. Held on the row itself so that a statement that locks the row sees it as it is now,
   * whatever its snapshot: 0 means nobody waits, and a turn may start in one statement.
   */
  @Property({ type: 'integer' })
  waiting = 0;

  @Property({ type: 'integer' })
  promptTokens = 0;

  @Property({ type: 'integer' })
  completionTokens = 0;

  @Property({ type: 'integer' })
  totalTokens = 0;

  constructor(userId: string, title: string | null = null, metadata: Record<string, unknown> | null = null) {
    this.userId = userId;
    this.title = title;
    this.metadata = metadata;
  }

  /** True while another turn holds a lease that has not run out. */
  isBusy(now: Date): boolean {
    return this.turnId !== null && this.leaseExpiresAt !== null && this.leaseExpiresAt > now;
  }
}
