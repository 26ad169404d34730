/** The committed schema.graphql is the schema the code builds; regenerate it with `npm run schema`. */
import 'reflect-metadata';
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { createSchema, printSdl } from '../src/graphql/schema.js';

describe('schema.graphql', () => {
  it('matches the schema built from the code (run `npm run schema` after changing it)', async () => {
    const committed = await readFile('schema.graphql', 'utf8');
    expect(printSdl(await createSchema())).toBe(committed);
  });

  it('builds from decorator metadata with the field types the clients rely on', async () => {
    const sdl = printSdl(await createSchema());
    expect(sdl).toContain('createdAt: DateTimeISO!');
    expect(sdl).toContain('sendMessage(input: SendMessageInput!): SendMessagePayload!');
    expect(sdl).toMatch(
      /conversations\(after: String, before: String, direction: OrderDirection! = DESC, filter: ConversationFilter, first: Int, last: Int, orderBy: ConversationOrderField! = LAST_ACTIVITY\): ConversationConnection!/,
    );
  });
});
