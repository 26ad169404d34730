/**
 * Search: `searchMessages` over the viewer's messages and conversation titles, and the checks of
 * the text a client searches for (also `conversations(filter: { search })`'s). The SQL is in
 * `db/stores/search.ts`; a hit's conversation comes through the request's loader, so that a page of
 * hits costs the same few statements whatever its size.
 */
import { Arg, FieldResolver, Int, Query, Resolver, Root } from 'type-graphql';
import { type SearchFilter as SearchConditions, type SearchHitRow, type SearchText, searchHits } from '../../db/stores/search.js';
import type { Conversation } from '../../entities/index.js';
import { badInput, notFound } from '../../errors.js';
import { hasControl, textProblem } from '../../text.js';
import type { RequestScope } from '../context.js';
import { checkFilterDates, cursors, parsePage, toConnection } from '../pagination.js';
import { ConversationType, SearchFilter, SearchHitConnection, SearchHitType } from '../types.js';
import { parseId } from './ids.js';

/** The longest search text accepted, in characters. */
export const SEARCH_QUERY_MAX_CHARS = 500;

@Resolver(() => SearchHitType)
export class SearchResolver {
  constructor(private readonly scope: RequestScope) {}

  @Query(() => SearchHitConnection, {
    description:
      'The viewer’s messages and conversation titles that match `query`, best first. The query is read as a web search box: ' +
      'words (all must match), "quoted phrases", -excluded words, `or` between alternatives.',
  })
  async searchMessages(
    @Arg('query', () => String) query: string,
    @Arg('first', () => Int, { nullable: true }) first?: number,
    @Arg('after', () => String, { nullable: true }) after?: string,
    @Arg('filter', () => SearchFilter, { nullable: true }) filter?: SearchFilter,
  ) {
    const { viewer, search } = this.scope;
    const text = searchText(query, 'query', search.language);
    const page = parsePage({ first, after }, cursors.search.decode);
    const rows = await searchHits(this.scope.em, viewer.userId, text, page, searchConditions(filter), {
      start: search.highlightStart,
      stop: search.highlightStop,
    });
    return toConnection(rows, page, cursors.search.encode);
  }

  @FieldResolver(() => ConversationType)
  async conversation(@Root() hit: SearchHitRow): Promise<Conversation> {
    const conversation = await this.scope.loaders.conversation.load(hit.conversationId);
    // Deleted between the search and this read: the hit is gone.
    if (!conversation) throw notFound('Conversation');
    return conversation;
  }
}

/**
 * The text of a search as a client sent it, checked: not blank, at most `SEARCH_QUERY_MAX_CHARS`,
 * text without control characters. Throws BAD_USER_INPUT naming `argument`.
 */
export function searchText(value: string, argument: string, language: string): SearchText {
  if (value.trim() === '') throw badInput(`${argument} must not be blank`, argument);
  if (value.length > SEARCH_QUERY_MAX_CHARS)
    throw badInput(`${argument} must be at most ${SEARCH_QUERY_MAX_CHARS} characters, got ${value.length}`, argument);
  const problem = textProblem(value) ?? (hasControl(value) ? 'holds a control character' : null);
  if (problem) throw badInput(`${argument} ${problem}`, argument);
  return { query: value, language };
}

// Private: the GraphQL filter as the store takes it, its id and dates checked.
function searchConditions(filter: SearchFilter | undefined): SearchConditions {
  if (!filter) return {};
  checkFilterDates(filter, ['createdAfter', 'createdBefore']);
  return {
    conversationId: filter.conversationId != null ? parseId(filter.conversationId, 'filter.conversationId') : null,
    role: filter.role,
    status: filter.status,
    createdAfter: filter.createdAfter,
    createdBefore: filter.createdBefore,
  };
}
