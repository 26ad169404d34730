/** Conversations: the viewer's list, one by id, and their nested fields through the loaders. */
import type { GraphQLResolveInfo } from 'graphql';
import { Arg, FieldResolver, ID, Info, Int, Query, Resolver, Root } from 'type-graphql';
import { checkMetadata } from '../../chat/metadata.js';
import { countConversations, findConversation, listConversations } from '../../db/stores/conversations.js';
import type { MessageView } from '../../db/stores/messages.js';
import type { Conversation } from '../../entities/index.js';
import type { RequestScope } from '../context.js';
import { checkFilterDates, cursors, parsePage, toConnection } from '../pagination.js';
import { selects } from '../selection.js';
import {
  ConversationConnection,
  ConversationFilter,
  ConversationOrderField,
  ConversationType,
  MessageConnection,
  MessageType,
  OrderDirection,
  ToolCallConnection,
  Usage,
} from '../types.js';
import { parseId } from './ids.js';
import { searchText } from './search.js';

/** The largest metadata object a filter may hold: what a conversation may store by default (METADATA_MAX_BYTES). */
const FILTER_METADATA_MAX_BYTES = 8 * 1024;

@Resolver(() => ConversationType)
export class ConversationResolver {
  constructor(private readonly scope: RequestScope) {}

  @Query(() => ConversationType, { nullable: true, description: 'A conversation of the viewer; null for an unknown id or another user’s.' })
  async conversation(@Arg('id', () => ID) id: string): Promise<Conversation | null> {
    const { viewer } = this.scope;
    return findConversation(this.scope.em, viewer.userId, parseId(id, 'id'));
  }

  @Query(() => ConversationConnection, {
    description: 'The viewer’s conversations, newest activity first unless orderBy/direction say otherwise.',
  })
  async conversations(
    @Arg('first', () => Int, { nullable: true }) first?: number,
    @Arg('after', () => String, { nullable: true }) after?: string,
    @Arg('last', () => Int, { nullable: true }) last?: number,
    @Arg('before', () => String, { nullable: true }) before?: string,
    @Arg('filter', () => ConversationFilter, { nullable: true }) filter?: ConversationFilter,
    @Arg('orderBy', () => ConversationOrderField, { defaultValue: ConversationOrderField.LAST_ACTIVITY })
    orderBy: ConversationOrderField = ConversationOrderField.LAST_ACTIVITY,
    @Arg('direction', () => OrderDirection, { defaultValue: OrderDirection.DESC }) direction: OrderDirection = OrderDirection.DESC,
  ) {
    const { viewer, em } = this.scope;
    const byCreation = orderBy === ConversationOrderField.CREATED_AT;
    const cursor = byCreation ? cursors.conversationByCreation : cursors.conversation;
    const page = parsePage({ first, after, last, before }, cursor.decode);
    checkFilterDates(filter, ['updatedAfter', 'updatedBefore']);
    if (filter?.metadata != null) checkMetadata(filter.metadata, 'filter.metadata', FILTER_METADATA_MAX_BYTES);
    const search = filter?.search != null ? searchText(filter.search, 'filter.search', this.scope.search.language) : null;
    const order = { by: byCreation ? 'createdAt' : 'lastMessageAt', direction: direction === OrderDirection.ASC ? 'asc' : 'desc' } as const;
    const conditions = { ...filter, search };
    const rows = await listConversations(em, viewer.userId, page, conditions, order);
    let total: Promise<number> | undefined;
    return {
      ...toConnection(rows, page, cursor.encode),
      // A statement of its own, run only when the query selects the field.
      get totalCount() {
        total ??= countConversations(em, viewer.userId, conditions);
        return total;
      },
    };
  }

  @FieldResolver(() => MessageConnection, { description: 'Messages by seq: first/after forward, last/before backward.' })
  async messages(
    @Root() conversation: Conversation,
    @Arg('first', () => Int, { nullable: true }) first?: number,
    @Arg('after', () => String, { nullable: true }) after?: string,
    @Arg('last', () => Int, { nullable: true }) last?: number,
    @Arg('before', () => String, { nullable: true }) before?: string,
    @Info() info?: GraphQLResolveInfo,
  ) {
    const withToolCalls = info !== undefined && selects(info, ['edges', 'node', 'toolCalls']);
    const page = await this.scope.loaders.messages.load({ parentId: conversation.id, args: { first, after, last, before, withToolCalls } });
    // Seqs are gapless, and the conversation counts its messages: no statement needed.
    return { ...page, totalCount: conversation.messageCount };
  }

  @FieldResolver(() => MessageType, { nullable: true })
  async lastMessage(@Root() conversation: Conversation): Promise<MessageView | null> {
    const page = await this.scope.loaders.messages.load({ parentId: conversation.id, args: { last: 1 } });
    return page.edges[0]?.node ?? null;
  }

  @FieldResolver(() => ToolCallConnection, { description: 'The tool calls of the conversation, oldest first.' })
  async toolCalls(
    @Root() conversation: Conversation,
    @Arg('first', () => Int, { nullable: true }) first?: number,
    @Arg('after', () => String, { nullable: true }) after?: string,
    @Arg('name', () => String, { nullable: true, description: 'Only calls of this tool.' }) name?: string,
    @Arg('isError', () => Boolean, { nullable: true, description: 'Only failed (true) or successful (false) calls.' }) isError?: boolean,
  ) {
    return this.scope.loaders.toolCalls.load({ parentId: conversation.id, args: { first, after, name, isError } });
  }

  @FieldResolver(() => Date, {
    nullable: true,
    description:
      'EXPIRED: when the retention policy expired it. ACTIVE: when it will expire, CONVERSATION_TTL after its last message or change (null when conversations never expire); the sweeper takes it at its first run after that instant, and a message before then restarts the clock. ARCHIVED: when it had expired before, else null.',
  })
  expiresAt(@Root() conversation: Conversation): Date | null {
    return this.scope.chat.expiresAt(conversation);
  }

  @FieldResolver(() => Usage, { description: 'Token totals of every turn of the conversation.' })
  usage(@Root() conversation: Conversation): Usage {
    return {
      promptTokens: conversation.promptTokens,
      completionTokens: conversation.completionTokens,
      totalTokens: conversation.totalTokens,
    };
  }
}
