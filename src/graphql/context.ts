/**
 * The context of one GraphQL request: its own unit of work (`em.fork()`), its own loaders, and
 * the viewer from the verified bearer token. Built per request; nothing here is shared.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { TurnDeps, Viewer } from '../chat/turn.js';
import { AppError, unauthenticated } from '../errors.js';
import { createLoaders, type Loaders } from './loaders.js';

/** Immutable things of the app that resolvers reach: the turn's collaborators. */
export type Services = Omit<TurnDeps, 'em'>;

export type Context = {
  em: EntityManager;
  services: Services;
  /** The viewer, or the reason there is none (checked when a field needs it). */
  auth: { viewer: Viewer; loaders: Loaders } | { error: AppError };
};

export function createContext(em: EntityManager, services: Services, auth: Viewer | AppError): Context {
  return {
    em,
    services,
    auth: auth instanceof AppError ? { error: auth } : { viewer: auth, loaders: createLoaders(em, auth) },
  };
}

/** The viewer and loaders of `ctx`, or UNAUTHENTICATED. */
export function authed(ctx: Context): { viewer: Viewer; loaders: Loaders } {
  if ('error' in ctx.auth) throw ctx.auth.error ?? unauthenticated();
  return ctx.auth;
}
