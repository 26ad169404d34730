import { Migration } from '@mikro-orm/migrations';

export class Migration20261125101437_turn_waiter extends Migration {
  override name = 'Migration20261125101437_turn_waiter';

  override up(): void | Promise<void> {
    this.addSql(
      `create table "turn_waiter" ("id" bigserial primary key, "conversation_id" uuid not null, "user_id" text not null, "expires_at" timestamptz not null);`,
    );
    this.addSql(`create index "turn_waiter_queue_idx" on "turn_waiter" ("conversation_id", "id");`);

    this.addSql(
      `alter table "turn_waiter" add constraint "turn_waiter_conversation_id_foreign" foreign key ("conversation_id") references "conversation" ("id") on delete cascade;`,
    );
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "turn_waiter" cascade;`);
  }
}
