/** Builds the executable schema from the resolvers (code first) and prints it as SDL. */
import { type GraphQLSchema, lexicographicSortSchema, printSchema } from 'graphql';
import { buildSchema } from 'type-graphql';
import { requestContainer } from './container.js';
import { ChatResolver } from './resolvers/chat.js';
import { ConversationResolver } from './resolvers/conversation.js';
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
    ],
    validate: false,
    // Each request gets its own resolver instances, made with its unit of work, viewer and loaders.
    container: requestContainer,
  });
}

/** The SDL committed as `schema.graphql`, sorted so that diffs show real changes only. */
export function printSdl(schema: GraphQLSchema): string {
  return `${printSchema(lexicographicSortSchema(schema))}\n`;
}
