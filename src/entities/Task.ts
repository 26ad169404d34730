/** A todo item of one user: the domain the built-in MCP todo server works on. */
import { PrimaryKeyProp } from '@mikro-orm/core';
import { Entity, Index, PrimaryKey, Property } from '@mikro-orm/decorators/legacy';
import { newId } from './ids.js';

@Entity()
@Index({ name: 'task_user_idx', properties: ['userId', 'id'] })
export class Task {
  [PrimaryKeyProp]?: ['userId', 'id'];

  @PrimaryKey({ type: 'text' })
  userId: string;

  @PrimaryKey({ type: 'uuid' })
  id: string = newId();

  @Property({ type: 'text' })
  title: string;

  @Property({ type: 'text', nullable: true })
  description: string | null = null;

  @Property({ type: 'boolean' })
  completed = false;

  @Property({ type: 'datetime' })
  createdAt: Date = new Date();

  @Property({ type: 'datetime', onUpdate: () => new Date() })
  updatedAt: Date = new Date();

  constructor(userId: string, title: string, description: string | null = null) {
    this.userId = userId;
    this.title = title;
    this.description = description;
  }
}
