/**
 * The context of one GraphQL request: its own unit of work (`em.fork()`), its own loaders, the
 * viewer from the verified bearer token, and its own resolver instances (`RequestContainer`).
 * Built per request; nothing here is shared.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Viewer } from '../auth/viewer.js';
import type { TurnDeps } from '../chat/turn.js';
import { AppError, unauthenticated } from '../errors.js';
import { RequestContainer } from './container.js';
import { createLoaders, type Loaders } from './loaders.js';

/** Immutable things of the app that resolvers reach: the turn's collaborators. */
export type Services = Omit<TurnDeps, 'em'>;

/**
 * What the resolvers of one request are constructed with. The viewer may be missing (no token, or
 * one that failed verification): the reason is kept, and thrown by `viewer` and `loaders` when a
 * field needs them, so that a request without a viewer fails field by field with UNAUTHENTICATED.
 */
export class RequestScope {
  private readonly auth: { viewer: Viewer; loaders: Loaders } | { error: AppError };

  constructor(
    /** This request's unit of work. */
    readonly em: EntityManager,
    readonly services: Services,
    auth: Viewer | AppError,
  ) {
    this.auth = auth instanceof AppError ? { error: auth } : { viewer: auth, loaders: createLoaders(em, auth) };
  }

  /** The viewer of the bearer token, or UNAUTHENTICATED. */
  get viewer(): Viewer {
    return this.authed().viewer;
  }

  /** The viewer's loaders, made for this request; UNAUTHENTICATED without a viewer. */
  get loaders(): Loaders {
    return this.authed().loaders;
  }

  private authed(): { viewer: Viewer; loaders: Loaders } {
    if ('error' in this.auth) throw this.auth.error ?? unauthenticated();
    return this.auth;
  }
}

export type Context = {
  scope: RequestScope;
  /** This request's resolver instances, made on first use; `buildSchema` reads them from here. */
  container: RequestContainer;
};

export function createContext(em: EntityManager, services: Services, auth: Viewer | AppError): Context {
  const scope = new RequestScope(em, services, auth);
  return { scope, container: new RequestContainer(scope) };
}
