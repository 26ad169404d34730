import { Migration } from '@mikro-orm/migrations';

export class Migration20261125092204_initial extends Migration {
  override name = 'Migration20261125092204_initial';

  override up(): void | Promise<void> {
    this.addSql(`create type "conversation_status" as enum ('active', 'archived', 'expired');`);
    this.addSql(`create type "message_role" as enum ('user', 'assistant', 'system', 'tool');`);
    this.addSql(`create type "message_status" as enum ('complete', 'in_progress', 'failed');`);
    this.addSql(
      `create table "conversation" ("id" uuid not null, "user_id" text not null, "title" text null, "status" "conversation_status" not null default 'active', "metadata" jsonb null, "created_at" timestamptz not null, "updated_at" timestamptz not null, "last_message_at" timestamptz not null, "expires_at" timestamptz null, "archived_at" timestamptz null, "message_count" int not null default 0, "next_seq" int not null default 1, "turn_id" uuid null, "lease_expires_at" timestamptz null, "prompt_tokens" int not null default 0, "completion_tokens" int not null default 0, "total_tokens" int not null default 0, primary key ("id"));`,
    );
    this.addSql(`create index "conversation_user_updated_idx" on "conversation" ("user_id", "updated_at", "id");`);
    this.addSql(`create index "conversation_user_activity_idx" on "conversation" ("user_id", "last_message_at", "id");`);

    this.addSql(
      `create table "message" ("id" uuid not null, "conversation_id" uuid not null, "user_id" text not null, "seq" int not null, "role" "message_role" not null, "content" text not null, "status" "message_status" not null, "client_message_id" text null, "model" text null, "prompt_tokens" int null, "completion_tokens" int null, "total_tokens" int null, "created_at" timestamptz not null, primary key ("id"));`,
    );
    this.addSql(`alter table "message" add constraint "message_user_client_message_id_unique" unique ("user_id", "client_message_id");`);
    this.addSql(`alter table "message" add constraint "message_conversation_seq_unique" unique ("conversation_id", "seq");`);

    this.addSql(
      `create table "task" ("id" uuid not null, "user_id" text not null, "title" text not null, "description" text null, "completed" boolean not null default false, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`,
    );
    this.addSql(`create index "task_user_idx" on "task" ("user_id", "id");`);

    this.addSql(
      `create table "tool_call" ("id" uuid not null, "message_id" uuid not null, "conversation_id" uuid not null, "user_id" text not null, "call_id" text not null, "server" text not null, "name" text not null, "arguments" jsonb not null, "result" jsonb null, "is_error" boolean not null, "started_at" timestamptz not null, "duration_ms" int not null, primary key ("id"));`,
    );
    this.addSql(`create index "tool_call_conversation_idx" on "tool_call" ("conversation_id", "id");`);
    this.addSql(`create index "tool_call_message_idx" on "tool_call" ("message_id", "id");`);

    this.addSql(
      `alter table "message" add constraint "message_conversation_id_foreign" foreign key ("conversation_id") references "conversation" ("id") on delete cascade;`,
    );

    this.addSql(
      `alter table "tool_call" add constraint "tool_call_message_id_foreign" foreign key ("message_id") references "message" ("id") on delete cascade;`,
    );
    this.addSql(
      `alter table "tool_call" add constraint "tool_call_conversation_id_foreign" foreign key ("conversation_id") references "conversation" ("id") on delete cascade;`,
    );
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table "message" drop constraint "message_conversation_id_foreign";`);
    this.addSql(`alter table "tool_call" drop constraint "tool_call_conversation_id_foreign";`);
    this.addSql(`alter table "tool_call" drop constraint "tool_call_message_id_foreign";`);

    this.addSql(`drop table if exists "conversation" cascade;`);
    this.addSql(`drop table if exists "message" cascade;`);
    this.addSql(`drop table if exists "task" cascade;`);
    this.addSql(`drop table if exists "tool_call" cascade;`);

    this.addSql(`drop type "conversation_status";`);
    this.addSql(`drop type "message_role";`);
    this.addSql(`drop type "message_status";`);
  }
}
