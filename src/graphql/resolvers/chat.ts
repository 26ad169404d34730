/** `sendMessage`: decodes the input, runs the turn in `chat/`, encodes the payload. */
import { Arg, Ctx, Mutation, Resolver } from 'type-graphql';
import { sendMessage } from '../../chat/turn.js';
import { authed, type Context } from '../context.js';
import { SendMessageInput, SendMessagePayload } from '../types.js';

@Resolver()
export class ChatResolver {
  @Mutation(() => SendMessagePayload, { description: 'Sends a message and returns the assistant’s reply, after both are stored.' })
  async sendMessage(@Arg('input', () => SendMessageInput) input: SendMessageInput, @Ctx() ctx: Context): Promise<SendMessagePayload> {
    const { viewer } = authed(ctx);
    const turn = await sendMessage({ ...ctx.services, em: ctx.em }, viewer, input);
    return { ...turn, response: turn.assistantMessage.content };
  }
}
