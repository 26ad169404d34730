/**
 * The GraphQL types of a conversation's events (`Subscription.conversationEvents`): the
 * `ConversationEvent` interface, one object type per kind, and the view of a domain event
 * (`chat/events.ts`) those types read. The view is made once per event; nested objects (the
 * stored reply, a tool call's record) come from the event itself, and their own fields resolve
 * through the loaders of that event's context (`http/subscriptions.ts` gives each event fresh ones).
 */
import { Field, ID, Int, InterfaceType, ObjectType, registerEnumType } from 'type-graphql';
import { type ConversationEvent, ConversationEventKind } from '../chat/events.js';
import type { MessageView } from '../db/stores/messages.js';
import type { ToolCallView } from '../db/stores/tool-calls.js';
import { encodeCursor } from './pagination.js';
import { JSONValue, MessageType, ToolCallType } from './types.js';

// The GraphQL names are the kind's keys (TURN_STARTED, ...); resolvers give the domain's values.
registerEnumType(ConversationEventKind, {
  name: 'ConversationEventType',
  description: 'What happened in a conversation: a turn started, its reply grew, a tool call started or finished, the turn ended.',
});

/** The cursor of an event: its position, opaque to clients (pass it as `after:` to resume). */
export const eventCursor = (position: number): string => encodeCursor('event', [position]);

/** The value every event type resolves from: the domain event, its cursor, and per kind what it carries. */
export type EventView = {
  kind: ConversationEventKind;
  cursor: string;
  position: number;
  conversationId: string;
  turnId: string;
  messageId: string;
  createdAt: Date;
  userMessageId: string | null;
  text: string | null;
  callId: string | null;
  server: string | null;
  name: string | null;
  arguments: unknown;
  toolCall: ToolCallView | null;
  message: MessageView | null;
  code: string | null;
  error: string | null;
};

/** The view of `event` the GraphQL types read. */
export function eventView(event: ConversationEvent): EventView {
  return {
    kind: event.kind,
    cursor: eventCursor(event.position),
    position: event.position,
    conversationId: event.conversationId,
    turnId: event.turnId,
    messageId: event.messageId,
    createdAt: event.createdAt,
    userMessageId: event.userMessageId,
    text: event.text,
    callId: event.call?.callId ?? null,
    server: event.call?.server ?? null,
    name: event.call?.name ?? null,
    arguments: event.call?.arguments ?? null,
    toolCall: event.toolCall,
    message: event.message,
    code: event.error?.code ?? null,
    error: event.error?.message ?? null,
  };
}

const TYPE_NAMES: Record<ConversationEventKind, string> = {
  [ConversationEventKind.TURN_STARTED]: 'TurnStartedEvent',
  [ConversationEventKind.TEXT_DELTA]: 'TextDeltaEvent',
  [ConversationEventKind.TOOL_CALL_STARTED]: 'ToolCallStartedEvent',
  [ConversationEventKind.TOOL_CALL_FINISHED]: 'ToolCallFinishedEvent',
  [ConversationEventKind.TURN_COMPLETED]: 'TurnCompletedEvent',
  [ConversationEventKind.TURN_FAILED]: 'TurnFailedEvent',
};

@InterfaceType('ConversationEvent', {
  description:
    'One event of a conversation’s stream, in position order; a turn writes TURN_STARTED, TEXT_DELTAs and tool calls, then TURN_COMPLETED or TURN_FAILED.',
  resolveType: (value: EventView) => {
    const name = TYPE_NAMES[value.kind];
    if (!name) throw new Error(`ConversationEvent.resolveType: unknown event kind ${JSON.stringify(value.kind)}`);
    return name;
  },
})
export abstract class ConversationEventType {
  @Field({ description: 'Opaque; pass it as after: to resume the stream right after this event.' }) cursor!: string;
  @Field(() => ConversationEventKind, { name: 'type' }) kind!: ConversationEventKind;
  @Field(() => Int, { description: 'Per conversation, from 1, without gaps.' }) position!: number;
  @Field(() => ID) conversationId!: string;
  @Field(() => ID, { description: 'The turn (one run of the agent) the event belongs to.' }) turnId!: string;
  @Field(() => ID, { description: 'The assistant message (the reply) the turn writes.' }) messageId!: string;
  @Field() createdAt!: Date;
}

@ObjectType('TurnStartedEvent', { implements: ConversationEventType })
export class TurnStartedEvent extends ConversationEventType {
  @Field(() => ID, { description: 'The user message the turn answers.' }) userMessageId!: string;
}

@ObjectType('TextDeltaEvent', { implements: ConversationEventType })
export class TextDeltaEvent extends ConversationEventType {
  @Field({ description: 'Text appended to the reply; the reply stored is all of them since TURN_STARTED, in order.' }) text!: string;
}

@ObjectType('ToolCallStartedEvent', { implements: ConversationEventType })
export class ToolCallStartedEvent extends ConversationEventType {
  @Field({ description: 'The provider’s id of the call.' }) callId!: string;
  @Field({ description: 'The MCP server the tool belongs to.' }) server!: string;
  @Field() name!: string;
  @Field(() => JSONValue, { nullable: true, description: 'The arguments as the model gave them.' }) arguments!: unknown;
}

@ObjectType('ToolCallFinishedEvent', { implements: ConversationEventType })
export class ToolCallFinishedEvent extends ConversationEventType {
  @Field(() => ToolCallType, { description: 'The tool call as stored, its result included.' }) toolCall!: object;
}

@ObjectType('TurnCompletedEvent', { implements: ConversationEventType })
export class TurnCompletedEvent extends ConversationEventType {
  @Field(() => MessageType, { description: 'The reply as stored.' }) message!: object;
}

@ObjectType('TurnFailedEvent', { implements: ConversationEventType })
export class TurnFailedEvent extends ConversationEventType {
  @Field(() => MessageType, { description: 'The reply as stored (status FAILED).' }) message!: object;
  @Field({ description: 'Why the turn failed, as an error code (UPSTREAM_ERROR, ...).' }) code!: string;
  @Field({ description: 'Why the turn failed, in words.' }) error!: string;
}

/** Every object type of an event, for `buildSchema`'s `orphanedTypes` (no field returns them by name). */
export const EVENT_TYPES = [
  TurnStartedEvent,
  TextDeltaEvent,
  ToolCallStartedEvent,
  ToolCallFinishedEvent,
  TurnCompletedEvent,
  TurnFailedEvent,
];
