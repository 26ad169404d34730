import { Migration } from '@mikro-orm/migrations';

export class Migration20261125184655_waiter_arrival extends Migration {
  override name = 'Migration20261125184655_waiter_arrival';

  override up(): void | Promise<void> {
    this.addSql(`drop index "turn_waiter_queue_idx";`);
    this.addSql(`alter table "turn_waiter" add "arrived_at" timestamptz not null default now();`);
    this.addSql(`create index "turn_waiter_queue_idx" on "turn_waiter" ("conversation_id", "arrived_at", "id");`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop index "turn_waiter_queue_idx";`);
    this.addSql(`alter table "turn_waiter" drop column "arrived_at";`);
    this.addSql(`create index "turn_waiter_queue_idx" on "turn_waiter" ("conversation_id", "id");`);
  }
}
