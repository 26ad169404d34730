import { Migration } from '@mikro-orm/migrations';

export class Migration20261205185956_purge extends Migration {
  override name = 'Migration20261205185956_purge';

  override up(): void | Promise<void> {
    this.addSql(`alter table "conversation" add "purged_at" timestamptz null, add "archive_location" jsonb null;`);
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table "conversation" drop column "purged_at", drop column "archive_location";`);
  }
}
