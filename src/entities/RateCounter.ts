/**
 * What one user has used of one rate limit or quota in its current window: one row per user and
 * kind, so the table stays as small as its users. A window starts with the first counted action
 * after the previous one ended, and lasts the limit's length (a minute, an hour, a day); the row
 * is reset in place when it rolls over (`chat/rate-limits.ts`), never deleted or piled up.
 */
import { BigIntType, PrimaryKeyProp } from '@mikro-orm/core';
import { Entity, Enum, PrimaryKey, Property } from '@mikro-orm/decorators/legacy';

export enum RateKind {
  TURNS = 'turns',
  CONVERSATIONS = 'conversations',
  TOKENS = 'tokens',
  MCP_CALLS = 'mcp_calls',
}

@Entity()
export class RateCounter {
  [PrimaryKeyProp]?: ['userId', 'kind'];

  @PrimaryKey({ type: 'text' })
  userId: string;

  @Enum({ items: () => RateKind, nativeEnumName: 'rate_kind', primary: true })
  kind: RateKind;

  /** Actions (or model tokens) counted since the window began. */
  @Property({ type: new BigIntType('number') })
  count: number;

  /** When the window ends; the next counted action after it starts a new one. */
  @Property({ type: 'datetime' })
  resetsAt: Date;

  constructor(userId: string, kind: RateKind, count: number, resetsAt: Date) {
    this.userId = userId;
    this.kind = kind;
    this.count = count;
    this.resetsAt = resetsAt;
  }
}
