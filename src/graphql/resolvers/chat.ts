/** `sendMessage`: decodes the input, runs the turn in `chat/`, encodes the payload. */
import { Arg, Mutation, Resolver } from 'type-graphql';
import type { RequestScope } from '../context.js';
import { SendMessageInput, SendMessagePayload } from '../types.js';

@Resolver()
export class ChatResolver {
  constructor(private readonly scope: RequestScope) {}

  @Mutation(() => SendMessagePayload, { description: 'Sends a message and returns the assistant’s reply, after both are stored.' })
  async sendMessage(@Arg('input', () => SendMessageInput) input: SendMessageInput): Promise<SendMessagePayload> {
    const { chat, em, viewer, log, receivedAt } = this.scope;
    const turn = await chat.sendMessage(em, viewer, input, { log, receivedAt });
    return { ...turn, response: turn.assistantMessage.content };
  }
}
