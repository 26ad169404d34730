/**
 * The GraphQL object, input and enum types. Resolvers return entities; these classes only say
 * which of their properties are exposed and how. Relations and computed fields are resolved in
 * `resolvers/` through the request's loaders.
 */
import { JSONObjectResolver, JSONResolver } from 'graphql-scalars';
import type { ClassType } from 'type-graphql';
import { Field, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { ConversationStatus, MessageRole, MessageStatus } from '../entities/index.js';

export const JSONObject = JSONObjectResolver;
/** The `JSON` scalar (any JSON value). */
export const JSONValue = JSONResolver;

registerEnumType(ConversationStatus, { name: 'ConversationStatus', description: 'Whether a conversation takes new messages.' });
registerEnumType(MessageRole, { name: 'MessageRole' });
registerEnumType(MessageStatus, {
  name: 'MessageStatus',
  description: 'A failed assistant message keeps its place; its turn can be retried.',
});

export enum IfBusy {
  REJECT = 'REJECT',
  ENQUEUE = 'ENQUEUE',
}
registerEnumType(IfBusy, { name: 'IfBusy', description: 'What sendMessage does while another turn runs in the conversation.' });

export enum MetadataMode {
  MERGE = 'MERGE',
  REPLACE = 'REPLACE',
}
registerEnumType(MetadataMode, {
  name: 'MetadataMode',
  description: 'MERGE: the given keys are set, the others kept (shallow). REPLACE: the given object is the whole metadata.',
});

@ObjectType({ description: 'Token counts reported by the model.' })
export class Usage {
  @Field(() => Int) promptTokens!: number;
  @Field(() => Int) completionTokens!: number;
  @Field(() => Int) totalTokens!: number;
}

@ObjectType({ description: 'The authenticated user.' })
export class Viewer {
  @Field(() => ID) id!: string;
}

@ObjectType('Conversation')
export class ConversationType {
  @Field(() => ID) id!: string;
  @Field(() => String, { nullable: true }) title!: string | null;
  @Field(() => ConversationStatus) status!: ConversationStatus;
  @Field(() => JSONObject, { nullable: true }) metadata!: Record<string, unknown> | null;
  @Field() createdAt!: Date;
  @Field() updatedAt!: Date;
  @Field() lastMessageAt!: Date;
  @Field(() => Date, { nullable: true }) archivedAt!: Date | null;
  @Field(() => Int) messageCount!: number;
}

@ObjectType('Message')
export class MessageType {
  @Field(() => ID) id!: string;
  @Field(() => Int, { description: 'Position in the conversation: gapless, starting at 1.' }) seq!: number;
  @Field(() => MessageRole) role!: MessageRole;
  @Field() content!: string;
  @Field(() => MessageStatus) status!: MessageStatus;
  @Field(() => String, { nullable: true }) clientMessageId!: string | null;
  @Field(() => String, { nullable: true }) model!: string | null;
  @Field() createdAt!: Date;
}

@ObjectType('ToolCall')
export class ToolCallType {
  @Field(() => ID) id!: string;
  @Field({ description: 'The provider’s id of the call.' }) callId!: string;
  @Field({ description: 'The MCP server the tool belongs to.' }) server!: string;
  @Field() name!: string;
  @Field(() => JSONValue, { nullable: true }) arguments!: unknown;
  @Field(() => JSONValue, { nullable: true }) result!: unknown;
  @Field() isError!: boolean;
  @Field() startedAt!: Date;
  @Field(() => Int) durationMs!: number;
}

@ObjectType('Task')
export class TaskType {
  @Field(() => ID) id!: string;
  @Field() title!: string;
  @Field(() => String, { nullable: true }) description!: string | null;
  @Field() completed!: boolean;
  @Field() createdAt!: Date;
  @Field() updatedAt!: Date;
}

@ObjectType({ description: 'A tool the agent is offered.' })
export class Tool {
  @Field() server!: string;
  @Field() name!: string;
  @Field() description!: string;
  @Field(() => JSONObject) inputSchema!: Record<string, unknown>;
}

@ObjectType()
export class PageInfo {
  @Field() hasNextPage!: boolean;
  @Field() hasPreviousPage!: boolean;
  @Field(() => String, { nullable: true }) startCursor!: string | null;
  @Field(() => String, { nullable: true }) endCursor!: string | null;
}

/** The one factory of Relay connection types: `XConnection { edges { cursor node } pageInfo }`. */
export function connectionOf<T extends object>(node: ClassType<T>, name: string) {
  @ObjectType(`${name}Edge`)
  class Edge {
    @Field({ description: 'Opaque; pass it as after/before.' }) cursor!: string;
    @Field(() => node) node!: T;
  }
  @ObjectType(`${name}Connection`)
  class Connection {
    @Field(() => [Edge]) edges!: Edge[];
    @Field(() => PageInfo) pageInfo!: PageInfo;
  }
  return Connection;
}

export const ConversationConnection = connectionOf(ConversationType, 'Conversation');
export const MessageConnection = connectionOf(MessageType, 'Message');
export const ToolCallConnection = connectionOf(ToolCallType, 'ToolCall');
export const TaskConnection = connectionOf(TaskType, 'Task');

@InputType()
export class ConversationFilter {
  @Field(() => ConversationStatus, { nullable: true }) status?: ConversationStatus | null;
  @Field(() => Date, { nullable: true, description: 'Only conversations updated at or after this instant.' }) updatedAfter?: Date | null;
  @Field(() => Date, { nullable: true, description: 'Only conversations updated before this instant.' }) updatedBefore?: Date | null;
  @Field(() => JSONObject, {
    nullable: true,
    description:
      'Only conversations whose metadata contains this object: { "project": "travel" } matches { "project": "travel", "pinned": true }.',
  })
  metadata?: Record<string, unknown> | null;
}

@InputType()
export class SendMessageInput {
  @Field(() => ID, { nullable: true, description: 'Absent: start a new conversation.' }) conversationId?: string | null;
  @Field() message!: string;
  @Field(() => String, { nullable: true, description: 'Idempotency key made by the client; a retry with it replays the turn.' })
  clientMessageId?: string | null;
  @Field(() => IfBusy, { nullable: true, defaultValue: IfBusy.REJECT }) ifBusy?: IfBusy;
  @Field(() => JSONObject, { nullable: true, description: 'Merged into the conversation’s metadata.' }) metadata?: Record<
    string,
    unknown
  > | null;
}

@ObjectType()
export class SendMessagePayload {
  @Field(() => ConversationType) conversation!: object;
  @Field(() => MessageType) userMessage!: object;
  @Field(() => MessageType) assistantMessage!: object;
  @Field({ description: 'The assistant’s answer (the content of assistantMessage).' }) response!: string;
  @Field(() => [ToolCallType], { description: 'The tool calls of this turn.' }) toolCalls!: object[];
  @Field({ description: 'True when this is a retry answered from the stored turn; nothing ran again.' }) replayed!: boolean;
}

@InputType()
export class CreateConversationInput {
  @Field(() => String, { nullable: true, description: 'Up to 200 characters; absent: untitled until its first message.' }) title?:
    | string
    | null;
  @Field(() => JSONObject, { nullable: true }) metadata?: Record<string, unknown> | null;
}

@InputType()
export class UpdateConversationInput {
  @Field(() => ID) id!: string;
  @Field(() => String, { nullable: true, description: 'The new title, up to 200 characters; absent: unchanged.' }) title?: string | null;
  @Field(() => JSONObject, { nullable: true, description: 'Absent: unchanged.' }) metadata?: Record<string, unknown> | null;
  @Field(() => MetadataMode, { nullable: true, defaultValue: MetadataMode.MERGE }) metadataMode?: MetadataMode;
}

@ObjectType()
export class DeleteConversationPayload {
  @Field(() => ID, { description: 'The id of the conversation deleted, with its messages and tool calls.' }) deletedId!: string;
}
