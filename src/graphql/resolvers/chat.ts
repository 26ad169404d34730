/** `sendMessage`: decodes the input, runs the turn in `chat/`, encodes the payload. */
import { Arg, Mutation, Resolver } from 'type-graphql';
import { sendMessage } from '../../chat/turn.js';
import type { RequestScope } from '../context.js';
import { SendMessageInput, SendMessagePayload } from '../types.js';

@Resolver()
export class ChatResolver {
  constructor(private readonly scope: RequestScope) {}

  @Mutation(() => SendMessagePayload, { description: 'Sends a message and returns the assistant’s reply, after both are stored.' })
  async sendMessage(@Arg('input', () => SendMessageInput) input: SendMessageInput): Promise<SendMessagePayload> {
    const { viewer } = this.scope;
    const turn = await sendMessage({ ...this.scope.services, em: this.scope.em }, viewer, input);
    return { ...turn, response: turn.assistantMessage.content };
  }
}
