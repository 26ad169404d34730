/**
 * A conversation's life beside its turns: made empty, renamed, its metadata merged or replaced,
 * archived and unarchived, reopened after it expired, deleted. Each is one short transaction that
 * locks the conversation row, the row a turn's start locks too, so none of them interleaves with a
 * turn's start or end on any instance. A conversation whose turn is running (its lease alive) is
 * never archived or deleted under it: CONVERSATION_BUSY. Everything acts for the viewer only;
 * another user's conversation is NOT_FOUND.
 *
 *   ACTIVE ⇄ ARCHIVED (archive / unarchive), ACTIVE → EXPIRED (the sweeper, by `CONVERSATION_TTL`)
 *   → ACTIVE (reopen); any state → deleted.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Viewer } from '../auth/viewer.js';
import * as conversations from '../db/stores/conversations.js';
import { Conversation, ConversationStatus } from '../entities/index.js';
import { badInput, notFound, purged } from '../errors.js';
import { textProblem } from '../text.js';
import { checkMetadata } from './metadata.js';
import { ConversationBusy } from './queue.js';
import { countNewConversation } from './rate-limits.js';

/** Longest title accepted, in UTF-16 units. */
export const TITLE_MAX_CHARS = 200;

export type MetadataMode = 'MERGE' | 'REPLACE';
export type StateChange = 'archive' | 'unarchive' | 'reopen';

/**
 * Makes an empty conversation of the viewer, counted against `conversationsPerHour` (0: off) like
 * one a first message makes: past it, RATE_LIMITED and nothing stored.
 */
export async function createConversation(
  em: EntityManager,
  viewer: Viewer,
  input: { title?: string | null; metadata?: Record<string, unknown> | null },
  settings: { metadataMaxBytes: number; conversationsPerHour: number },
): Promise<Conversation> {
  const title = input.title == null ? null : checkTitle(input.title);
  const metadata = input.metadata == null ? null : checkMetadata(input.metadata, 'metadata', settings.metadataMaxBytes);
  const conversation = new Conversation(viewer.userId, title, metadata);
  await em.transactional(async (em) => {
    await countNewConversation(em, viewer.userId, settings.conversationsPerHour);
    await conversations.insertConversation(em, conversation);
  });
  return conversation;
}

/** Renames the viewer's conversation and merges (default) or replaces its metadata; what is absent stays. */
export async function updateConversation(
  em: EntityManager,
  viewer: Viewer,
  input: { id: string; title?: string | null; metadata?: Record<string, unknown> | null; metadataMode?: MetadataMode | null },
  metadataMaxBytes: number,
): Promise<Conversation> {
  const title = input.title == null ? undefined : checkTitle(input.title);
  const given = input.metadata == null ? undefined : checkMetadata(input.metadata, 'metadata', metadataMaxBytes);
  return em.transactional(async (em) => {
    const conversation = await locked(em, viewer, input.id);
    const changes: conversations.LifecycleChanges = {};
    if (title !== undefined) changes.title = title;
    if (given !== undefined) {
      const metadata = input.metadataMode === 'REPLACE' ? given : { ...conversation.metadata, ...given };
      changes.metadata = checkMetadata(metadata, 'metadata', metadataMaxBytes);
    }
    if (Object.keys(changes).length === 0) return conversation;
    changes.updatedAt = new Date();
    await conversations.writeConversation(em, viewer.userId, conversation.id, changes);
    return Object.assign(conversation, changes);
  });
}

/**
 * Archives, unarchives or reopens the viewer's conversation. Asking for the state it is in already
 * succeeds and changes nothing; archiving needs no turn running (CONVERSATION_BUSY).
 */
export async function changeState(em: EntityManager, viewer: Viewer, id: string, change: StateChange): Promise<Conversation> {
  return em.transactional(async (em) => {
    const conversation = await locked(em, viewer, id);
    const now = new Date();
    const { status } = conversation;
    let changes: conversations.LifecycleChanges;
    if (change === 'archive') {
      if (status === ConversationStatus.ARCHIVED) return conversation;
      refuseWhileRunning(conversation, now);
      changes = { status: ConversationStatus.ARCHIVED, archivedAt: now };
    } else {
      const from = change === 'unarchive' ? ConversationStatus.ARCHIVED : ConversationStatus.EXPIRED;
      if (status === ConversationStatus.ACTIVE) return conversation;
      // Its messages are in an archive file: active again, it would take turns with no history.
      if (conversation.purgedAt !== null) throw purged(conversation.id);
      if (status !== from) {
        const instead = status === ConversationStatus.ARCHIVED ? 'unarchiveConversation' : 'reopenConversation';
        throw badInput(`The conversation is ${status.toUpperCase()}, not ${from.toUpperCase()}: ${instead} makes it active`, 'id');
      }
      changes = { status: ConversationStatus.ACTIVE, ...(change === 'unarchive' ? { archivedAt: null } : { expiresAt: null }) };
    }
    changes.updatedAt = now;
    await conversations.writeConversation(em, viewer.userId, conversation.id, changes);
    return Object.assign(conversation, changes);
  });
}

/** Deletes the viewer's conversation with its messages and tool calls (its tasks stay: they are the user's); returns its id. */
export async function deleteConversation(em: EntityManager, viewer: Viewer, id: string): Promise<string> {
  return em.transactional(async (em) => {
    const conversation = await locked(em, viewer, id);
    refuseWhileRunning(conversation, new Date());
    await conversations.deleteConversation(em, viewer.userId, conversation.id);
    return conversation.id;
  });
}

// Private: the viewer's conversation, locked; NOT_FOUND for an unknown id and for another user's.
async function locked(em: EntityManager, viewer: Viewer, id: string): Promise<Conversation> {
  const conversation = await conversations.readLocked(em, viewer.userId, id);
  if (!conversation) throw notFound('Conversation');
  return conversation;
}

// Private: CONVERSATION_BUSY while a turn holds the conversation (a lease that has not run out).
function refuseWhileRunning(conversation: Conversation, now: Date): void {
  if (conversation.isBusy(now)) {
    throw new ConversationBusy(conversation.id, (conversation.leaseExpiresAt?.getTime() ?? now.getTime()) - now.getTime());
  }
}

// Private: a title is text of 1 to TITLE_MAX_CHARS characters once trimmed.
function checkTitle(value: string): string {
  const problem = textProblem(value);
  if (problem) throw badInput(`title ${problem}`, 'title');
  const title = value.trim();
  if (title.length === 0 || title.length > TITLE_MAX_CHARS) throw badInput(`title must be 1 to ${TITLE_MAX_CHARS} characters`, 'title');
  return title;
}
