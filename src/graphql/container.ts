/**
 * Resolvers made fresh for every request. type-graphql asks its container for the instance of a
 * resolver class each time it resolves a field of that class; given `requestContainer` (the
 * scoped-container form of `buildSchema`'s `container` option), it asks the request's own
 * `RequestContainer`, kept on the context, which makes each class's instance on first use with the
 * request's scope and hands the same one back for the rest of the request. No instance outlives
 * its request's context, so there is nothing to dispose.
 */
import type { ContainerType, ResolverData } from 'type-graphql';
import type { Context, RequestScope } from './context.js';

/** A resolver class: constructed with the scope of the request it serves. */
export type ResolverClass = new (scope: RequestScope) => object;

/** The resolver instances of one request. */
export class RequestContainer implements ContainerType {
  // Private: one instance per resolver class, made on first use.
  private readonly instances = new Map<ResolverClass, object>();

  constructor(private readonly scope: RequestScope) {}

  get(resolverClass: ResolverClass): object {
    let instance = this.instances.get(resolverClass);
    if (instance === undefined) {
      instance = new resolverClass(this.scope);
      this.instances.set(resolverClass, instance);
    }
    return instance;
  }
}

/** For `buildSchema({ container })`: the container of the request that `context` belongs to. */
export function requestContainer({ context }: ResolverData<Context>): ContainerType {
  return context.container;
}
