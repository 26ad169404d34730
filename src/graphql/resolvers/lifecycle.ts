/** The conversation lifecycle's mutations: decode, call the chat (`chat/lifecycle.ts`), encode. */
import { Arg, ID, Mutation, Resolver } from 'type-graphql';
import type { StateChange } from '../../chat/lifecycle.js';
import type { Conversation } from '../../entities/index.js';
import type { RequestScope } from '../context.js';
import { ConversationType, CreateConversationInput, DeleteConversationPayload, UpdateConversationInput } from '../types.js';
import { parseId } from './ids.js';

@Resolver()
export class LifecycleResolver {
  constructor(private readonly scope: RequestScope) {}

  @Mutation(() => ConversationType, { description: 'Makes an empty conversation of the viewer.' })
  async createConversation(@Arg('input', () => CreateConversationInput) input: CreateConversationInput): Promise<Conversation> {
    const { chat, em, viewer } = this.scope;
    return chat.createConversation(em, viewer, input);
  }

  @Mutation(() => ConversationType, { description: 'Renames a conversation and merges or replaces its metadata; also while a turn runs.' })
  async updateConversation(@Arg('input', () => UpdateConversationInput) input: UpdateConversationInput): Promise<Conversation> {
    const { chat, em, viewer } = this.scope;
    return chat.updateConversation(em, viewer, { ...input, id: parseId(input.id, 'input.id') });
  }

  @Mutation(() => ConversationType, {
    description: 'ACTIVE or EXPIRED → ARCHIVED (read-only); archived already: unchanged. CONVERSATION_BUSY while a turn runs.',
  })
  async archiveConversation(@Arg('id', () => ID) id: string): Promise<Conversation> {
    return this.change(id, 'archive');
  }

  @Mutation(() => ConversationType, { description: 'ARCHIVED → ACTIVE; active already: unchanged.' })
  async unarchiveConversation(@Arg('id', () => ID) id: string): Promise<Conversation> {
    return this.change(id, 'unarchive');
  }

  @Mutation(() => ConversationType, { description: 'EXPIRED → ACTIVE; active already: unchanged.' })
  async reopenConversation(@Arg('id', () => ID) id: string): Promise<Conversation> {
    return this.change(id, 'reopen');
  }

  @Mutation(() => DeleteConversationPayload, {
    description: 'Deletes a conversation for good, with its messages and tool calls (tasks stay). CONVERSATION_BUSY while a turn runs.',
  })
  async deleteConversation(@Arg('id', () => ID) id: string): Promise<DeleteConversationPayload> {
    const { chat, em, viewer } = this.scope;
    return { deletedId: await chat.deleteConversation(em, viewer, parseId(id, 'id')) };
  }

  // Private: one of the three state changes.
  private change(id: string, change: StateChange): Promise<Conversation> {
    const { chat, em, viewer } = this.scope;
    return chat.changeConversationState(em, viewer, parseId(id, 'id'), change);
  }
}
