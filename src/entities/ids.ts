/** Row ids: UUIDv7, time-ordered, so inserts stay local in the B-tree and ids sort by creation. */
import { v7 as uuidv7, validate, version } from 'uuid';

export const newId = (): string => uuidv7();

/** True when `value` is a syntactically valid UUID (any version). */
export const isUuid = (value: string): boolean => validate(value) && version(value) >= 1;
