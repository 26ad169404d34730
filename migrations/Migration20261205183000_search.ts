import { Migration } from '@mikro-orm/migrations';

/**
 * Full-text search over messages: `search_config` is the text search configuration a message is
 * indexed with (by default the connection's `stateless_chat.search_language`, which the server sets
 * from SEARCH_LANGUAGE; `simple` without it), `search` its stored tsvector, and one GIN index on
 * `(user_id, search)` (btree_gin: the user's rows only, in the same index scan). Adding the
 * generated column rewrites the table once.
 */
export class Migration20261205183000_search extends Migration {
  override name = 'Migration20261205183000_search';

  override up(): void | Promise<void> {
    this.addSql(`create extension if not exists btree_gin;`);
    this.addSql(
      `alter table "message" add column "search_config" regconfig not null default coalesce(nullif(current_setting('stateless_chat.search_language', true), ''), 'simple')::regconfig;`,
    );
    this.addSql(`alter table "message" add column "search" tsvector generated always as (to_tsvector("search_config", "content")) stored;`);
    this.addSql(`create index "message_search_idx" on "message" using gin ("user_id", "search");`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop index "message_search_idx";`);
    this.addSql(`alter table "message" drop column "search";`);
    this.addSql(`alter table "message" drop column "search_config";`);
  }
}
