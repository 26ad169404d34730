import { Migration } from '@mikro-orm/migrations';

export class Migration20261205235600_user_keys extends Migration {
  override name = 'Migration20261205235600_user_keys';

  override up(): void | Promise<void> {
    // The foreign keys go first: they hang on the keys that change.
    this.addSql(`alter table "conversation_event" drop constraint "conversation_event_conversation_id_foreign";`);
    this.addSql(`alter table "message" drop constraint "message_conversation_id_foreign";`);
    this.addSql(`alter table "tool_call" drop constraint "tool_call_conversation_id_foreign";`);
    this.addSql(`alter table "tool_call" drop constraint "tool_call_message_id_foreign";`);
    this.addSql(`alter table "turn_waiter" drop constraint "turn_waiter_conversation_id_foreign";`);

    // Every key of a user's rows starts with `user_id` (docs/scaling.md: each can be distributed by user).
    this.addSql(`alter table "conversation" drop constraint "conversation_pkey";`);
    this.addSql(`alter table "conversation_event" drop constraint "conversation_event_pkey";`);
    this.addSql(`alter table "conversation_event" drop constraint "conversation_event_position_unique";`);
    this.addSql(`alter table "message" drop constraint "message_conversation_seq_unique";`);
    this.addSql(`alter table "message" drop constraint "message_pkey";`);
    this.addSql(`alter table "task" drop constraint "task_pkey";`);
    this.addSql(`alter table "tool_call" drop constraint "tool_call_pkey";`);
    this.addSql(`alter table "turn_waiter" drop constraint "turn_waiter_pkey";`);
    this.addSql(`alter table "conversation" add primary key ("user_id", "id");`);
    this.addSql(`alter table "message" add primary key ("user_id", "id");`);
    this.addSql(`alter table "tool_call" add primary key ("user_id", "id");`);
    this.addSql(`alter table "conversation_event" add primary key ("user_id", "id");`);
    this.addSql(`alter table "task" add primary key ("user_id", "id");`);
    this.addSql(`alter table "turn_waiter" add primary key ("user_id", "id");`);
    this.addSql(
      `alter table "conversation_event" add constraint "conversation_event_position_unique" unique ("user_id", "conversation_id", "position");`,
    );
    this.addSql(`alter table "message" add constraint "message_conversation_seq_unique" unique ("user_id", "conversation_id", "seq");`);

    // A row refers to its conversation or message by `(user_id, id)`, its own `user_id` being the one.
    this.addSql(
      `alter table "message" add constraint "message_user_id_conversation_id_foreign" foreign key ("user_id", "conversation_id") references "conversation" ("user_id", "id") on update no action on delete cascade;`,
    );
    this.addSql(
      `alter table "tool_call" add constraint "tool_call_user_id_message_id_foreign" foreign key ("user_id", "message_id") references "message" ("user_id", "id") on update no action on delete cascade;`,
    );
    this.addSql(
      `alter table "tool_call" add constraint "tool_call_user_id_conversation_id_foreign" foreign key ("user_id", "conversation_id") references "conversation" ("user_id", "id") on update no action on delete cascade;`,
    );
    this.addSql(
      `alter table "conversation_event" add constraint "conversation_event_user_id_conversation_id_foreign" foreign key ("user_id", "conversation_id") references "conversation" ("user_id", "id") on update no action on delete cascade;`,
    );
    this.addSql(
      `alter table "turn_waiter" add constraint "turn_waiter_user_id_conversation_id_foreign" foreign key ("user_id", "conversation_id") references "conversation" ("user_id", "id") on update no action on delete cascade;`,
    );

    // The indexes of those references lead with `user_id` too.
    this.addSql(`drop index "tool_call_conversation_idx";`);
    this.addSql(`drop index "tool_call_message_idx";`);
    this.addSql(`drop index "turn_waiter_queue_idx";`);
    this.addSql(`create index "tool_call_conversation_idx" on "tool_call" ("user_id", "conversation_id", "id");`);
    this.addSql(`create index "tool_call_message_idx" on "tool_call" ("user_id", "message_id", "id");`);
    this.addSql(`create index "turn_waiter_queue_idx" on "turn_waiter" ("user_id", "conversation_id", "arrived_at", "id");`);
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table "conversation_event" drop constraint "conversation_event_user_id_conversation_id_foreign";`);

    this.addSql(`alter table "message" drop constraint "message_user_id_conversation_id_foreign";`);

    this.addSql(`alter table "tool_call" drop constraint "tool_call_user_id_message_id_foreign";`);
    this.addSql(`alter table "tool_call" drop constraint "tool_call_user_id_conversation_id_foreign";`);

    this.addSql(`alter table "turn_waiter" drop constraint "turn_waiter_user_id_conversation_id_foreign";`);

    this.addSql(`alter table "conversation" drop constraint "conversation_pkey";`);
    this.addSql(`alter table "conversation" add primary key ("id");`);

    this.addSql(`alter table "conversation_event" drop constraint "conversation_event_position_unique";`);
    this.addSql(`alter table "conversation_event" drop constraint "conversation_event_pkey";`);
    this.addSql(
      `alter table "conversation_event" add constraint "conversation_event_conversation_id_foreign" foreign key ("conversation_id") references "conversation" ("id") on delete cascade;`,
    );
    this.addSql(
      `alter table "conversation_event" add constraint "conversation_event_position_unique" unique ("conversation_id", "position");`,
    );
    this.addSql(`alter table "conversation_event" add primary key ("id");`);

    this.addSql(`alter table "message" drop constraint "message_conversation_seq_unique";`);
    this.addSql(`alter table "message" drop constraint "message_pkey";`);
    this.addSql(
      `alter table "message" add constraint "message_conversation_id_foreign" foreign key ("conversation_id") references "conversation" ("id") on delete cascade;`,
    );
    this.addSql(`alter table "message" add constraint "message_conversation_seq_unique" unique ("conversation_id", "seq");`);
    this.addSql(`alter table "message" add primary key ("id");`);

    this.addSql(`alter table "task" drop constraint "task_pkey";`);
    this.addSql(`alter table "task" add primary key ("id");`);

    this.addSql(`drop index "tool_call_conversation_idx";`);
    this.addSql(`drop index "tool_call_message_idx";`);
    this.addSql(`alter table "tool_call" drop constraint "tool_call_pkey";`);
    this.addSql(
      `alter table "tool_call" add constraint "tool_call_conversation_id_foreign" foreign key ("conversation_id") references "conversation" ("id") on delete cascade;`,
    );
    this.addSql(
      `alter table "tool_call" add constraint "tool_call_message_id_foreign" foreign key ("message_id") references "message" ("id") on delete cascade;`,
    );
    this.addSql(`create index "tool_call_conversation_idx" on "tool_call" ("conversation_id", "id");`);
    this.addSql(`create index "tool_call_message_idx" on "tool_call" ("message_id", "id");`);
    this.addSql(`alter table "tool_call" add primary key ("id");`);

    this.addSql(`drop index "turn_waiter_queue_idx";`);
    this.addSql(`alter table "turn_waiter" drop constraint "turn_waiter_pkey";`);
    this.addSql(
      `alter table "turn_waiter" add constraint "turn_waiter_conversation_id_foreign" foreign key ("conversation_id") references "conversation" ("id") on delete cascade;`,
    );
    this.addSql(`create index "turn_waiter_queue_idx" on "turn_waiter" ("conversation_id", "arrived_at", "id");`);
    this.addSql(`alter table "turn_waiter" add primary key ("id");`);
  }
}
