/**
 * The storage contract of a persisted seen-set: keys with what is remembered of
 * them, in a keyed store (lib/keyed-store.ts). Every implementation passes the same
 * contract test (test/support/seen-store-contract.ts).
 */
import type { KeyedRecord, KeyedStore, KeyedStoreWrite } from '../keyed-store.js';
import type { SeenEntry } from './seen-cache.js';

export type SeenRecord = KeyedRecord<SeenEntry>;
export type SeenStoreWrite = KeyedStoreWrite<SeenEntry>;
export type SeenStore = KeyedStore<SeenEntry>;
