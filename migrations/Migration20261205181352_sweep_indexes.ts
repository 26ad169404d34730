import { Migration } from '@mikro-orm/migrations';

export class Migration20261205181352_sweep_indexes extends Migration {
  override name = 'Migration20261205181352_sweep_indexes';

  override up(): void | Promise<void> {
    this.addSql(`create index "conversation_archive_idx" on "conversation" ("last_message_at") where "status" <> 'archived';`);
    this.addSql(`create index "conversation_expire_idx" on "conversation" ("last_message_at") where "status" = 'active';`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop index "conversation_archive_idx";`);
    this.addSql(`drop index "conversation_expire_idx";`);
  }
}
