/** Messages and tool calls: one message by id, and their nested fields through the loaders. */
import { Arg, FieldResolver, ID, Query, Resolver, Root } from 'type-graphql';
import { findMessage, type MessageView } from '../../db/stores/messages.js';
import type { ToolCallView } from '../../db/stores/tool-calls.js';
import type { Conversation, Message } from '../../entities/index.js';
import type { RequestScope } from '../context.js';
import { ConversationType, MessageType, ToolCallType, Usage } from '../types.js';
import { parseId } from './ids.js';

@Resolver(() => MessageType)
export class MessageResolver {
  constructor(private readonly scope: RequestScope) {}

  @Query(() => MessageType, { nullable: true, description: 'A message of the viewer; null for an unknown id or another user’s.' })
  async message(@Arg('id', () => ID) id: string): Promise<Message | null> {
    const { viewer } = this.scope;
    return findMessage(this.scope.em, viewer.userId, parseId(id, 'id'));
  }

  @FieldResolver(() => ConversationType)
  async conversation(@Root() message: MessageView): Promise<Conversation | null> {
    return this.scope.loaders.conversation.load(message.conversation.id);
  }

  @FieldResolver(() => [ToolCallType], { description: 'The tool calls the assistant made for this message, in order.' })
  toolCalls(@Root() message: MessageView): ToolCallView[] | Promise<ToolCallView[]> {
    // Read with its page when the query asked for them (see `messages`): no promise per message.
    return message.toolCalls ?? this.scope.loaders.toolCallsOfMessage.load(message.id);
  }

  @FieldResolver(() => Usage, { nullable: true, description: 'Token counts of the model call that wrote this message.' })
  usage(@Root() message: MessageView): Usage | null {
    if (message.totalTokens === null) return null;
    return { promptTokens: message.promptTokens ?? 0, completionTokens: message.completionTokens ?? 0, totalTokens: message.totalTokens };
  }
}

@Resolver(() => ToolCallType)
export class ToolCallResolver {
  constructor(private readonly scope: RequestScope) {}

  @FieldResolver(() => MessageType)
  async message(@Root() call: ToolCallView): Promise<Message | null> {
    return this.scope.loaders.message.load(call.message.id);
  }
}
