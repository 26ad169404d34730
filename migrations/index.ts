/**
 * Every migration, in order. The ORM runs this list rather than scanning the folder, so the same
 * list works from the TypeScript sources (tests) and from the compiled output (`npm start`).
 * `npm run migrate:create` writes a new migration file beside this one and adds it here.
 */
import type { MigrationObject } from '@mikro-orm/core';
import { Migration20261125092204_initial } from './Migration20261125092204_initial.js';
import { Migration20261125101437_turn_waiter } from './Migration20261125101437_turn_waiter.js';
import { Migration20261125132632_rate_counter } from './Migration20261125132632_rate_counter.js';
import { Migration20261125184655_waiter_arrival } from './Migration20261125184655_waiter_arrival.js';
import { Migration20261125190639_conversation_waiting } from './Migration20261125190639_conversation_waiting.js';
import { Migration20261125204224_metadata_index } from './Migration20261125204224_metadata_index.js';
import { Migration20261205181352_sweep_indexes } from './Migration20261205181352_sweep_indexes.js';
import { Migration20261205181358_listing } from './Migration20261205181358_listing.js';
import { Migration20261205183000_search } from './Migration20261205183000_search.js';
import { Migration20261205185956_purge } from './Migration20261205185956_purge.js';
import { Migration20261205205909_events } from './Migration20261205205909_events.js';
import { Migration20261205235600_user_keys } from './Migration20261205235600_user_keys.js';

export const migrationsList: MigrationObject[] = [
  { name: 'Migration20261125092204_initial', class: Migration20261125092204_initial },
  { name: 'Migration20261125101437_turn_waiter', class: Migration20261125101437_turn_waiter },
  { name: 'Migration20261125132632_rate_counter', class: Migration20261125132632_rate_counter },
  { name: 'Migration20261125184655_waiter_arrival', class: Migration20261125184655_waiter_arrival },
  { name: 'Migration20261125190639_conversation_waiting', class: Migration20261125190639_conversation_waiting },
  { name: 'Migration20261125204224_metadata_index', class: Migration20261125204224_metadata_index },
  { name: 'Migration20261205181352_sweep_indexes', class: Migration20261205181352_sweep_indexes },
  { name: 'Migration20261205181358_listing', class: Migration20261205181358_listing },
  { name: 'Migration20261205183000_search', class: Migration20261205183000_search },
  { name: 'Migration20261205185956_purge', class: Migration20261205185956_purge },
  { name: 'Migration20261205205909_events', class: Migration20261205205909_events },
  { name: 'Migration20261205235600_user_keys', class: Migration20261205235600_user_keys },
];
