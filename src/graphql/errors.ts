/**
 * The one place where errors are shaped for GraphQL clients: a domain `AppError` becomes
 * `{ message, extensions: { code, ...details } }`; GraphQL's own request errors (parse, validation,
 * variables, and the limits of `limits.ts`) pass as they are; anything else is logged with its
 * cause and stack and masked as INTERNAL_SERVER_ERROR: no stack or SQL reaches the client.
 *
 * Over HTTP, Apollo's `operationNotes` plugin (`server.ts`) logs internal errors with the
 * request's logger (its request id on the line), and `formatError` is given no logger; the
 * subscriptions give theirs.
 */
import { unwrapResolverError } from '@apollo/server/errors';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';

/**
 * The `formatError` of Apollo and of the subscriptions. `log`, when given, is where internal
 * errors are logged as they are masked; null: the caller logs them (`internalError`).
 */
export function formatError(log: Logger | null, options: { hideSuggestions: boolean }) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const original = unwrapResolverError(error);
    if (original instanceof AppError) {
      return {
        message: original.message,
        locations: formatted.locations,
        path: formatted.path,
        extensions: { code: original.code, ...original.details },
      };
    }
    // GraphQL's parse, validation and variable errors, and the limits' refusals, are meant for clients.
    if (original instanceof GraphQLError) return clientError(formatted, options.hideSuggestions);
    log?.error({ err: original, path: formatted.path }, 'internal error in a GraphQL request');
    return {
      message: 'Internal server error',
      locations: formatted.locations,
      path: formatted.path,
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    };
  };
}

/** The error behind `error` when `formatError` masks it as INTERNAL_SERVER_ERROR (`{ cause }`); null for an error meant for clients. */
export function internalError(error: unknown): { cause: unknown } | null {
  const original = unwrapResolverError(error);
  return original instanceof AppError || original instanceof GraphQLError ? null : { cause: original };
}

// Private: a client's error as it is, but for two touches: the token limit named like the other
// limits (the parser says it in its message only), and, in production, no "Did you mean" hints
// that would map the schema for someone without introspection.
function clientError(formatted: GraphQLFormattedError, hideSuggestions: boolean): GraphQLFormattedError {
  let result = formatted;
  if (result.extensions?.code === 'GRAPHQL_PARSE_FAILED' && TOKEN_LIMIT.test(result.message)) {
    // graphql-js 16 says "more that N tokens"; say it right.
    result = {
      ...result,
      message: result.message.replace('more that', 'more than'),
      extensions: { ...result.extensions, limit: 'tokens' },
    };
  }
  if (hideSuggestions && SUGGESTION.test(result.message)) result = { ...result, message: result.message.replace(SUGGESTION, '') };
  return result;
}

const TOKEN_LIMIT = /Document contains more tha[nt] \d+ tokens/;
const SUGGESTION = /\s*Did you mean .+\?$/s;
