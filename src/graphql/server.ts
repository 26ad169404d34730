/**
 * The Apollo server of `/graphql`: the schema, the query limits checked before execution, errors
 * mapped once (`formatError`), internal errors logged with the request's logger, what the request
 * line tells of each operation (`operationNotes`), and the landing page. Made here, started and
 * stopped by `app.ts`, mounted on express by `http/routes.ts`.
 */
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';
import type { GraphQLSchema } from 'graphql';
import type { Config } from '../config.js';
import type { Context } from './context.js';
import { formatError, internalError } from './errors.js';
import { queryLimits } from './limits.js';

/** The GraphQL server of the app: Apollo, with the context of one request (`./context.ts`). */
export type Apollo = ApolloServer<Context>;

/** The Apollo server for `schema` (not started). `devToken`, when given, is put in Sandbox's headers. */
export function createApollo(schema: GraphQLSchema, config: Config, devToken?: string): Apollo {
  return new ApolloServer<Context>({
    schema,
    introspection: config.introspection,
    includeStacktraceInErrorResponses: false,
    // main.ts owns shutdown (drain, then close pool and database); Apollo's own signal handling races it.
    stopOnTerminationSignals: false,
    // Internal errors are logged by `operationNotes`, on the request's logger.
    formatError: formatError(null, { hideSuggestions: config.env === 'production' }),
    // The parser stops at the token limit; the other limits run before validation and execution.
    parseOptions: { maxTokens: config.graphql.maxTokens },
    // A browser cannot send a cross-site simple request with an Authorization header: a request
    // carrying one was preflighted (or made by a non-browser client), so it is no CSRF.
    csrfPrevention: { requestHeaders: ['x-apollo-operation-name', 'apollo-require-preflight', 'authorization'] },
    // No cache hints are set, and the cache-control plugin Apollo installs by default wraps every
    // field's resolver to compute them: a tenth of a large browse's time, for nothing.
    plugins: [
      operationNotes(),
      queryLimits(schema, config.graphql),
      landingPage(config, devToken),
      ApolloServerPluginCacheControlDisabled(),
    ],
  });
}

// Private: logs the errors `formatError` masks on the request's logger (its request id on the
// line), with cause and stack; and, as the response goes, fills the context's `notes` (name,
// type, the codes of the errors clients see) for the request line and the metrics.
function operationNotes(): ApolloServerPlugin<Context> {
  return {
    async requestDidStart() {
      return {
        async didEncounterErrors({ contextValue, errors, operationName }) {
          for (const error of errors) {
            const internal = internalError(error);
            if (internal)
              contextValue.scope.log.error({ err: internal.cause, path: error.path, operationName }, 'internal error in a GraphQL request');
          }
        },
        async willSendResponse({ contextValue, operationName, operation, request, response }) {
          const notes = contextValue.notes;
          if (!notes) return;
          notes.operationName = operationName ?? request.operationName ?? null;
          notes.operationType = operation?.operation ?? null;
          const errors = response.body.kind === 'single' ? response.body.singleResult.errors : response.body.initialResult.errors;
          notes.errorCodes = [...new Set((errors ?? []).map((error) => String(error.extensions?.code ?? 'UNKNOWN')))];
        },
      };
    },
  };
}

// Private: Sandbox outside production with the dev token already in the Authorization header.
function landingPage(config: Config, devToken: string | undefined): ApolloServerPlugin<Context> {
  if (!config.introspection) return ApolloServerPluginLandingPageDisabled();
  return ApolloServerPluginLandingPageLocalDefault({
    embed: { initialState: { sharedHeaders: devToken ? { Authorization: `Bearer ${devToken}` } : {} } },
    includeCookies: false,
    footer: false,
  });
}
