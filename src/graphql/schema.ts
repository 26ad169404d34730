/** Builds the executable schema from the resolvers (code first) and prints it as SDL. */
import { type GraphQLSchema, lexicographicSortSchema, printSchema } from 'graphql';
import { buildSchema, type PubSub } from 'type-graphql';
import { requestContainer } from './container.js';
import { EVENT_TYPES } from './event-types.js';
import { ChatResolver } from './resolvers/chat.js';
import { ConversationResolver } from './resolvers/conversation.js';
import { EventsResolver } from './resolvers/events.js';
import { ExportResolver } from './resolvers/export.js';
import { LifecycleResolver } from './resolvers/lifecycle.js';
import { MessageResolver, ToolCallResolver } from './resolvers/message.js';
import { NodeResolver } from './resolvers/node.js';
import { SearchResolver } from './resolvers/search.js';
import { ViewerResolver } from './resolvers/viewer.js';

export function createSchema(): Promise<GraphQLSchema> {
  return buildSchema({
    resolvers: [
      ViewerResolver,
      NodeResolver,
      ConversationResolver,
      MessageResolver,
      ToolCallResolver,
      ChatResolver,
      LifecycleResolver,
      SearchResolver,
      ExportResolver,
      EventsResolver,
    ],
    // The event types are returned through their interface only.
    orphanedTypes: EVENT_TYPES,
    // type-graphql asks for a pub/sub whenever there is a subscription, though ours streams from
    // `chat/` (its `subscribe` function form) and publishes no topics.
    pubSub: NO_TOPICS,
    validate: false,
    // Each request gets its own resolver instances, made with its unit of work, viewer and loaders.
    container: requestContainer,
  });
}

const NO_TOPICS: PubSub = {
  publish(topic) {
    throw new Error(`No pub/sub topics here (publish ${JSON.stringify(topic)}): subscriptions stream from chat/`);
  },
  subscribe(topic) {
    throw new Error(`No pub/sub topics here (subscribe ${JSON.stringify(topic)}): subscriptions stream from chat/`);
  },
};

/** The SDL committed as `schema.graphql`, sorted so that diffs show real changes only. */
export function printSdl(schema: GraphQLSchema): string {
  return `${printSchema(lexicographicSortSchema(schema))}\n`;
}
