import { Migration } from '@mikro-orm/migrations';

export class Migration20261125132632_rate_counter extends Migration {
  override name = 'Migration20261125132632_rate_counter';

  override up(): void | Promise<void> {
    this.addSql(`create type "rate_kind" as enum ('turns', 'conversations', 'tokens', 'mcp_calls');`);
    this.addSql(
      `create table "rate_counter" ("user_id" text not null, "kind" "rate_kind" not null, "count" bigint not null, "resets_at" timestamptz not null, primary key ("user_id", "kind"));`,
    );
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "rate_counter" cascade;`);

    this.addSql(`drop type "rate_kind";`);
  }
}
