/**
 * The context of one GraphQL request: its own unit of work (`em.fork()`), its own loaders, the
 * viewer from the verified bearer token, and its own resolver instances (`RequestContainer`).
 * Built per request; the one shared thing it carries is the process's `Chat`, which keeps no
 * request's state.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Viewer } from '../auth/viewer.js';
import type { Chat } from '../chat/chat.js';
import type { SearchSettings } from '../config.js';
import { AppError, unauthenticated } from '../errors.js';
import type { Logger } from '../log.js';
import { RequestContainer } from './container.js';
import { createLoaders, type Loaders } from './loaders.js';

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
    /** The turn and the tools it offers (`chat/chat.ts`): what `sendMessage` and `tools` call. */
    readonly chat: Chat,
    auth: Viewer | AppError,
    /** This request's logger (its request id bound). */
    readonly log: Logger,
    /** How `searchMessages` reads queries and marks snippets (SEARCH_LANGUAGE, SEARCH_HIGHLIGHT_START/STOP). */
    readonly search: SearchSettings,
    /** When the request reached this instance. */
    readonly receivedAt: Date = new Date(),
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
  /** Filled by Apollo's `operationNotes` plugin (`server.ts`) for the request line and the metrics; absent over subscriptions. */
  notes?: OperationNotes;
};

/** What the request line tells of a GraphQL operation: its name (null: anonymous) and type, and its errors' codes in order. */
export type OperationNotes = { operationName: string | null; operationType: string | null; errorCodes: string[] };

export function createContext(
  em: EntityManager,
  chat: Chat,
  auth: Viewer | AppError,
  log: Logger,
  search: SearchSettings,
  receivedAt?: Date,
): Context {
  const scope = new RequestScope(em, chat, auth, log, search, receivedAt);
  return { scope, container: new RequestContainer(scope) };
}
