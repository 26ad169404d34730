/**
 * `Subscription.conversationEvents`: decodes the arguments and opens the conversation's event
 * stream in `chat/` (which checks that the conversation is the viewer's); each event it yields is
 * shown through `eventView`. The transports (`http/subscriptions.ts`) give the subscription its
 * context: the viewer, a unit of work, and how much its connection holds unsent.
 */
import { Arg, ID, Resolver, Root, type SubscribeResolverData, Subscription } from 'type-graphql';
import type { ConversationEvent, EventStreamOptions } from '../../chat/events.js';
import { badInput } from '../../errors.js';
import type { Context } from '../context.js';
import { ConversationEventType, type EventView, eventView } from '../event-types.js';
import { decodeCursor } from '../pagination.js';

/** The context of a subscription: a request's, with what the transport knows of the stream. */
export type SubscriptionContext = Context & {
  stream: {
    /** Bytes the connection holds unsent (a WebSocket's `bufferedAmount`, an SSE response's `writableLength`). */
    backlog: () => number;
    /** Aborted when the client unsubscribes or goes away, or the server stops. */
    signal: AbortSignal;
  };
};

type EventsArgs = { conversationId: string; after?: string | null };

const POSITION_MAX = Number.MAX_SAFE_INTEGER;

/** The position a cursor of `conversationEvents` stands for, or BAD_USER_INPUT naming `after`. */
export function decodeEventCursor(cursor: string, argument = 'after'): number {
  const position = decodeCursor('event', ['n'], cursor, argument)[0] as number;
  if (position < 0 || position > POSITION_MAX) throw badInput(`${argument} is not a valid cursor for this connection`, argument);
  return position;
}

function openEvents({ args, context }: SubscribeResolverData<unknown, EventsArgs, SubscriptionContext>) {
  const { scope, stream } = context;
  const options: EventStreamOptions = {
    after: args.after == null ? null : decodeEventCursor(args.after),
    backlog: stream.backlog,
    signal: stream.signal,
  };
  return scope.chat.conversationEvents(scope.em, scope.viewer, args.conversationId, options);
}

@Resolver()
export class EventsResolver {
  @Subscription(() => ConversationEventType, {
    description:
      'The events of one of the viewer’s conversations as they happen: after: a cursor resumes right after that event (from the database, without gap or duplicate); without it, only events from now on. Served over WebSocket (graphql-transport-ws) and Server-Sent Events (graphql-sse) at /graphql.',
    subscribe: openEvents,
  })
  conversationEvents(
    @Root() event: ConversationEvent,
    @Arg('conversationId', () => ID) _conversationId: string,
    @Arg('after', () => String, { nullable: true, description: 'A cursor of an event already received.' }) _after?: string | null,
  ): EventView {
    return eventView(event);
  }
}
