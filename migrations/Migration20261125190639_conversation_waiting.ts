import { Migration } from '@mikro-orm/migrations';

export class Migration20261125190639_conversation_waiting extends Migration {
  override name = 'Migration20261125190639_conversation_waiting';

  override up(): void | Promise<void> {
    this.addSql(`alter table "conversation" add "waiting" int not null default 0;`);
    // Requests already waiting are counted (the count is kept with the rows from here on), for every user.
    this.addSql(
      `/* across users */ update "conversation" c set "waiting" = w.n from (select "conversation_id", "user_id", count(*) as n from "turn_waiter" group by "conversation_id", "user_id") w where w."conversation_id" = c."id" and w."user_id" = c."user_id";`,
    );
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table "conversation" drop column "waiting";`);
  }
}
