import { Migration } from '@mikro-orm/migrations';

export class Migration20261205181358_listing extends Migration {
  override name = 'Migration20261205181358_listing';

  override up(): void | Promise<void> {
    this.addSql(`alter table "conversation" alter column "created_at" type timestamptz(3) using ("created_at"::timestamptz(3));`);
    this.addSql(`alter table "conversation" alter column "last_message_at" type timestamptz(3) using ("last_message_at"::timestamptz(3));`);
    this.addSql(`create index "conversation_user_created_idx" on "conversation" ("user_id", "created_at", "id");`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop index "conversation_user_created_idx";`);
    this.addSql(`alter table "conversation" alter column "created_at" type timestamptz(6) using ("created_at"::timestamptz(6));`);
    this.addSql(`alter table "conversation" alter column "last_message_at" type timestamptz(6) using ("last_message_at"::timestamptz(6));`);
  }
}
