/**
 * The GraphQL object, input and enum types. Resolvers return entities; these classes only say
 * which of their properties are exposed and how. Relations and computed fields are resolved in
 * `resolvers/` through the request's loaders.
 */
import { JSONObjectResolver, JSONResolver } from 'graphql-scalars';
import type { ClassType } from 'type-graphql';
import { Field, Float, ID, InputType, Int, InterfaceType, ObjectType, registerEnumType } from 'type-graphql';
import { Conversation, ConversationStatus, Message, MessageRole, MessageStatus, Task, ToolCall } from '../entities/index.js';

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

export enum ExportFormat {
  JSONL = 'JSONL',
  MARKDOWN = 'MARKDOWN',
}
registerEnumType(ExportFormat, {
  name: 'ExportFormat',
  description:
    'JSONL: the archive record of docs/export-format.md (one line; the CLI imports it). MARKDOWN: a readable transcript, tool calls as collapsed blocks.',
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

/**
 * Relay's `Node`: an object refetchable by its id alone (`node(id:)`). `node` answers entities
 * (`NodeValue` of `loaders.ts`), told apart here by their class.
 */
@InterfaceType('Node', {
  description: 'An object with a global id, refetchable with node(id:) (Relay Global Object Identification).',
  resolveType: (value: unknown) => nodeTypeName(value),
})
export abstract class Node {
  @Field(() => ID, { description: 'Unique among all objects of every type; the same id the object has everywhere.' }) id!: string;
}

// Private: the GraphQL type of an entity `node` answered.
function nodeTypeName(value: unknown): string {
  if (value instanceof Conversation) return 'Conversation';
  if (value instanceof Message) return 'Message';
  if (value instanceof ToolCall) return 'ToolCall';
  if (value instanceof Task) return 'Task';
  throw new Error(`Node.resolveType: not an entity of a node type: ${Object.prototype.toString.call(value)}`);
}

@ObjectType('Conversation', { implements: Node })
export class ConversationType {
  @Field(() => ID) id!: string;
  @Field(() => String, { nullable: true }) title!: string | null;
  @Field(() => ConversationStatus) status!: ConversationStatus;
  @Field(() => JSONObject, { nullable: true }) metadata!: Record<string, unknown> | null;
  @Field() createdAt!: Date;
  @Field() updatedAt!: Date;
  @Field() lastMessageAt!: Date;
  @Field(() => Date, { nullable: true }) archivedAt!: Date | null;
  @Field(() => Date, {
    nullable: true,
    description:
      'Set while the conversation’s messages are in an archive file, not in the database (messages answers none): an operator brings them back with `restore`.',
  })
  purgedAt!: Date | null;
  @Field(() => Int) messageCount!: number;
}

@ObjectType('Message', { implements: Node })
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

@ObjectType('ToolCall', { implements: Node })
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

@ObjectType('Task', { implements: Node })
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

/**
 * The one factory of Relay connection types: `XConnection { edges { cursor node } pageInfo }`, and
 * `totalCount` when `counted` describes it (the resolver gives it as a number, or a promise made
 * only when a query asks for it).
 */
export function connectionOf<T extends object>(node: ClassType<T>, name: string, counted?: string) {
  @ObjectType(`${name}Edge`)
  class Edge {
    @Field({ description: 'Opaque; pass it as after/before.' }) cursor!: string;
    @Field(() => node) node!: T;
  }
  @ObjectType(`${name}Connection`)
  class Connection {
    @Field(() => [Edge]) edges!: Edge[];
    @Field(() => PageInfo) pageInfo!: PageInfo;
    totalCount?: number;
  }
  if (counted) Field(() => Int, { description: counted })(Connection.prototype, 'totalCount');
  return Connection;
}

@ObjectType('SearchHit', {
  description: 'A message whose content matches the search, or (message null) a conversation whose title matches.',
})
export class SearchHitType {
  @Field(() => MessageType, { nullable: true, description: 'The message found; null when the hit is the conversation’s title.' })
  message!: object | null;
  @Field(() => ConversationType, { description: 'The conversation of the message, or the one whose title matches.' })
  conversation!: object;
  @Field({
    description:
      'The words found in context, as HTML: the text escaped (&, <, >, quotes), the words found between the configured markers (SEARCH_HIGHLIGHT_START/STOP, default <mark>…</mark>).',
  })
  snippet!: string;
  @Field(() => Float, { description: 'PostgreSQL’s ts_rank: higher is better; comparable within one search only.' })
  rank!: number;
}

export const ConversationConnection = connectionOf(
  ConversationType,
  'Conversation',
  'How many conversations pass the filter, on every page alike (counted only when asked for).',
);
export const MessageConnection = connectionOf(MessageType, 'Message', 'How many messages the conversation has.');
export const ToolCallConnection = connectionOf(ToolCallType, 'ToolCall');
export const TaskConnection = connectionOf(TaskType, 'Task');
export const SearchHitConnection = connectionOf(SearchHitType, 'SearchHit');

export enum ConversationOrderField {
  LAST_ACTIVITY = 'LAST_ACTIVITY',
  CREATED_AT = 'CREATED_AT',
}
registerEnumType(ConversationOrderField, {
  name: 'ConversationOrderField',
  description:
    'LAST_ACTIVITY: by the last message (a conversation written to moves to the front). CREATED_AT: by creation, which never changes: paging by it lists every conversation exactly once, whatever is written meanwhile.',
});

export enum OrderDirection {
  ASC = 'ASC',
  DESC = 'DESC',
}
registerEnumType(OrderDirection, { name: 'OrderDirection', description: 'DESC: newest first. ASC: oldest first.' });

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
  @Field(() => String, {
    nullable: true,
    description: 'Only conversations whose title or one of whose messages matches this search (as searchMessages reads it).',
  })
  search?: string | null;
}

@InputType({ description: 'Narrows searchMessages; every condition given must hold.' })
export class SearchFilter {
  @Field(() => ID, { nullable: true, description: 'Hits in this conversation only (another user’s: none).' }) conversationId?:
    | string
    | null;
  @Field(() => MessageRole, { nullable: true, description: 'Messages of this role only (title hits are left out).' })
  role?: MessageRole | null;
  @Field(() => ConversationStatus, { nullable: true, description: 'Hits in conversations of this status only.' })
  status?: ConversationStatus | null;
  @Field(() => Date, { nullable: true, description: 'Messages (title hits: conversations) created at or after this instant.' })
  createdAfter?: Date | null;
  @Field(() => Date, { nullable: true, description: 'Messages (title hits: conversations) created before this instant.' })
  createdBefore?: Date | null;
}

@InputType()
export class SendMessageInput {
  @Field(() => ID, { nullable: true, description: 'Absent: start a new conversation.' }) conversationId?: string | null;
  @Field() message!: string;
  @Field(() => String, { nullable: true, description: 'Idempotency key made by the client; a retry with it replays the turn.' })
  clientMessageId?: string | null;
  @Field(() => IfBusy, { nullable: true, defaultValue: IfBusy.REJECT }) ifBusy?: IfBusy;
  @Field(() => Boolean, {
    nullable: true,
    defaultValue: true,
    description:
      'False: answer as soon as the message and the reply in progress are stored, and let the turn run on (follow it with conversationEvents(after: eventCursor)).',
  })
  wait?: boolean | null;
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
  @Field(() => String, {
    nullable: true,
    description:
      'With wait: false, the cursor just before this turn’s first event: conversationEvents(after: it) streams the whole turn. Null when the turn was answered whole.',
  })
  eventCursor!: string | null;
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
