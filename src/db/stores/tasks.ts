/**
 * The task store: every statement on `task`, the todo list the built-in MCP server works on.
 * Each method acts for one user and filters by `user_id`: another user's task is reported exactly
 * like one that does not exist. A change is one statement (`update … returning`), so parallel
 * tool calls need no unit of work of their own.
 */
import type { EntityManager, FilterQuery } from '@mikro-orm/postgresql';
import { Task } from '../../entities/index.js';
import type { Page } from './pages.js';

export type TaskChanges = { title?: string; description?: string | null; completed?: boolean };

export type TaskStore = {
  /**
   * Adds a task; with `maxTasks` > 0, only while the user has fewer (race-safe: one user's adds
   * take turns on a lock held to the commit). Null when the limit is reached.
   */
  add(userId: string, title: string, description: string | null, maxTasks: number): Promise<Task | null>;
  /** All the user's tasks, oldest first (ids are time-ordered UUIDv7); only those `completed` or not, when given. */
  list(userId: string, completed?: boolean | null): Promise<Task[]>;
  /** The user's tasks among `ids` (any order; unknown ids and other users' are left out). */
  find(userId: string, ids: readonly string[]): Promise<Task[]>;
  /** One page of the user's tasks (up to `page.limit + 1` rows in page direction). */
  page(userId: string, page: Page<string>, completed?: boolean | null): Promise<Task[]>;
  /** Changes the user's task `id`; the task as changed, or null when it is not the user's. */
  update(userId: string, id: string, changes: TaskChanges): Promise<Task | null>;
  /** Deletes the user's task `id`; the task as it was, or null when it is not the user's. */
  remove(userId: string, id: string): Promise<Task | null>;
};

// The key space of the advisory lock that one user's adds take turns on (with a hash of the user id).
const TASK_QUOTA_LOCK = 0x7461736b; // 'task'

/** The task store over `em` (any unit of work: each method is its own statement or transaction). */
export function taskStore(em: EntityManager): TaskStore {
  return {
    async add(userId, title, description, maxTasks) {
      const task = new Task(userId, title, description);
      if (maxTasks === 0) {
        await em.insert(task);
        return task;
      }
      return em.transactional(async (tx) => {
        await tx.execute('select pg_advisory_xact_lock(?, hashtext(?))', [TASK_QUOTA_LOCK, userId]);
        if ((await tx.count(Task, { userId })) >= maxTasks) return null;
        await tx.insert(task);
        return task;
      });
    },

    list(userId, completed) {
      const where: FilterQuery<Task> = completed == null ? { userId } : { userId, completed };
      return em.find(Task, where, { orderBy: { id: 'asc' }, disableIdentityMap: true });
    },

    find(userId, ids) {
      return em.find(Task, { id: { $in: [...ids] }, userId });
    },

    page(userId, page, completed) {
      const forward = page.direction === 'forward';
      const where: FilterQuery<Task> = { userId };
      if (completed != null) where.completed = completed;
      if (page.cursor) where.id = { [forward ? '$gt' : '$lt']: page.cursor };
      return em.find(Task, where, { orderBy: { id: forward ? 'asc' : 'desc' }, limit: page.limit + 1 });
    },

    async update(userId, id, changes) {
      const set: string[] = [];
      const params: unknown[] = [];
      for (const [column, value] of [
        ['title', changes.title],
        ['description', changes.description],
        ['completed', changes.completed],
      ] as const) {
        if (value === undefined) continue;
        set.push(`${column} = ?`);
        params.push(value);
      }
      const rows = await em.execute(
        `update task set ${[...set, 'updated_at = now()'].join(', ')} where id = ? and user_id = ? returning *`,
        [...params, id, userId],
      );
      return rows[0] ? em.map(Task, rows[0], { disableIdentityMap: true }) : null;
    },

    async remove(userId, id) {
      const rows = await em.execute('delete from task where id = ? and user_id = ? returning *', [id, userId]);
      return rows[0] ? em.map(Task, rows[0], { disableIdentityMap: true }) : null;
    },
  };
}
