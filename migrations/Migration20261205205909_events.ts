import { Migration } from '@mikro-orm/migrations';

export class Migration20261205205909_events extends Migration {
  override name = 'Migration20261205205909_events';

  override up(): void | Promise<void> {
    this.addSql(
      `create type "conversation_event_kind" as enum ('turn_started', 'text_delta', 'tool_call_started', 'tool_call_finished', 'turn_completed', 'turn_failed');`,
    );
    this.addSql(
      `create table "conversation_event" ("id" uuid not null, "conversation_id" uuid not null, "user_id" text not null, "position" int not null, "kind" "conversation_event_kind" not null, "turn_id" uuid not null, "message_id" uuid not null, "text" text null, "data" jsonb null, "tool_call_id" uuid null, "created_at" timestamptz(3) not null, primary key ("id"));`,
    );
    this.addSql(
      `alter table "conversation_event" add constraint "conversation_event_position_unique" unique ("conversation_id", "position");`,
    );

    this.addSql(`alter table "conversation" add "event_seq" int not null default 0;`);

    this.addSql(
      `alter table "conversation_event" add constraint "conversation_event_conversation_id_foreign" foreign key ("conversation_id") references "conversation" ("id") on delete cascade;`,
    );
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "conversation_event" cascade;`);

    this.addSql(`alter table "conversation" drop column "event_seq";`);

    this.addSql(`drop type "conversation_event_kind";`);
  }
}
