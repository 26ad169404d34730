import { Migration } from '@mikro-orm/migrations';

export class Migration20261125204224_metadata_index extends Migration {
  override name = 'Migration20261125204224_metadata_index';

  override up(): void | Promise<void> {
    this.addSql(`create index "conversation_metadata_idx" on "conversation" using gin ("metadata" jsonb_path_ops);`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop index "conversation_metadata_idx";`);
  }
}
