/**
 * The one place where errors are shaped for GraphQL clients: `AppError`s (a `GraphQLError`) and
 * GraphQL's own request errors pass as they are; anything else is logged with its cause and masked as
 * INTERNAL_SERVER_ERROR, without stack or SQL.
 */
import { unwrapResolverError } from '@apollo/server/errors';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import type { Logger } from '../log.js';

export function formatError(log: Logger) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const original = unwrapResolverError(error);
    // Our own errors, and GraphQL's parse, validation and variable errors, are meant for clients.
    if (original instanceof GraphQLError) return formatted;
    log.error({ err: original, path: formatted.path }, 'internal error in a GraphQL request');
    return {
      message: 'Internal server error',
      locations: formatted.locations,
      path: formatted.path,
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    };
  };
}
