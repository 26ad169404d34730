/** `sendMessage`: decodes the input, runs the turn in `chat/`, encodes the payload. */
import { Arg, Mutation, Resolver } from 'type-graphql';
import type { RequestScope } from '../context.js';
import { encodeCursor } from '../pagination.js';
import { SendMessageInput, SendMessagePayload } from '../types.js';

@Resolver()
export class ChatResolver {
  constructor(private readonly scope: RequestScope) {}

  @Mutation(() => SendMessagePayload, {
    description: 'Sends a message and returns the assistant’s reply, after both are stored (with wait: false, once the turn has begun).',
  })
  async sendMessage(@Arg('input', () => SendMessageInput) input: SendMessageInput): Promise<SendMessagePayload> {
    const { chat, em, viewer, log, receivedAt } = this.scope;
    const turn = await chat.sendMessage(em, viewer, input, { log, receivedAt });
    const eventCursor = turn.eventsAfter === null ? null : encodeCursor('event', [turn.eventsAfter]);
    return { ...turn, response: turn.assistantMessage.content, eventCursor };
  }
}
