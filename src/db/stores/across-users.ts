/**
 * The comment that opens every statement spanning users by design: the sweeps, the archiver's
 * claim, and exports or counts without a user. Every other statement names the user for each user
 * table it touches (DESIGN.md; on a database distributed by user, such a statement runs on one
 * shard, docs/scaling.md). The comment says which statements do not, in the code, in
 * `pg_stat_statements`, and to the suite's statement check (`test/support/user-scope.ts`).
 */
export const ACROSS_USERS = '/* across users */ ';

/** `ACROSS_USERS` when no user is given, else nothing: a filter by user keeps the statement on one user's rows. */
export const acrossUsersUnless = (userId: string | null | undefined): string => (userId == null ? ACROSS_USERS : '');
