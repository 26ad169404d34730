/** Test users. */
import { randomUUID } from 'node:crypto';

/** A user id no other test uses: tests never share state through a user. */
export const uniqueUser = (name: string): string => `${name}-${randomUUID().slice(0, 8)}`;
