/**
 * `exportConversation`: one of the viewer's conversations as a document, the same bytes the CLI's
 * `export` writes for it (`archive/export.ts`), built in memory up to a cap; a larger one is
 * refused with EXPORT_TOO_LARGE, saying to use the CLI, which streams.
 */
import { Arg, ID, Query, Resolver } from 'type-graphql';
import { conversationDocument } from '../../archive/export.js';
import { notFound, purged } from '../../errors.js';
import type { RequestScope } from '../context.js';
import { ExportFormat } from '../types.js';
import { parseId } from './ids.js';

@Resolver()
export class ExportResolver {
  constructor(private readonly scope: RequestScope) {}

  @Query(() => String, {
    description:
      'One of the viewer’s conversations with every message, tool call and usage: JSONL, the archive record (one line, ' +
      'as `stateless-chat export` writes it and `stateless-chat import` reads it), or MARKDOWN, a readable transcript. ' +
      'NOT_FOUND for an unknown id or another user’s; CONVERSATION_PURGED while its messages are in an archive file; EXPORT_TOO_LARGE past 10 MiB (use the CLI).',
  })
  async exportConversation(
    @Arg('id', () => ID) id: string,
    @Arg('format', () => ExportFormat, { defaultValue: ExportFormat.JSONL }) format: ExportFormat,
  ): Promise<string> {
    const { em, viewer, loaders } = this.scope;
    const conversationId = parseId(id, 'id');
    // A purged conversation's messages are in an archive file: its document here would lack them.
    const conversation = await loaders.conversation.load(conversationId);
    if (conversation?.purgedAt) throw purged(conversationId);
    const layout = format === ExportFormat.MARKDOWN ? 'markdown' : 'jsonl';
    const document = conversation && (await conversationDocument(em, viewer.userId, conversationId, layout));
    if (!document) throw notFound('Conversation');
    return document;
  }
}
