import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import type { SeenRecord, SeenStore } from '../../nodes/lib/dedupe/seen-store.js';

/** Makes a store; `reopen` gives a store over the same data as the previous one, after it was closed. */
export interface SeenStoreFactory {
  create(): Promise<SeenStore>;
  reopen(previous: SeenStore): Promise<SeenStore>;
}

function record(key: string, at: number, count = 1): SeenRecord {
  return { key, entry: { firstSeenAt: at, lastSeenAt: at + count - 1, count } };
}

const byKey = (records: SeenRecord[]) => [...records].sort((a, b) => (a.key < b.key ? -1 : 1));

/** The seen-set storage contract: every store implementation runs these. */
export function seenStoreContract(name: string, factory: SeenStoreFactory): void {
  describe(`seen-set store contract: ${name}`, () => {
    it('opens empty', async () => {
      const store = await factory.create();
      assert.deepEqual(await store.open(), []);
      await store.destroy();
    });

    it('gives back every record written, times and counts intact, after a reopen', async () => {
      const store = await factory.create();
      await store.open();
      const records = [
        record('i0190a1b2-0000-7000-8000-000000000001', 1_700_000_000_123.5),
        record('hAbC-_', 1_700_000_000_000, 3),
        record('t/1\u0000s42', 1, 4_294_967_295),
        record('sé ✓', 0),
      ];
      await store.write({ clear: false, put: records, del: [], sync: true });
      const reopened = await factory.reopen(store);
      assert.deepEqual(byKey(await reopened.open()), byKey(records));
      await reopened.destroy();
    });

    it('replaces a key written again and deletes keys, in one write', async () => {
      const store = await factory.create();
      await store.open();
      await store.write({
        clear: false,
        put: [record('a', 1), record('b', 2), record('c', 3)],
        del: [],
        sync: true,
      });
      await store.write({
        clear: false,
        put: [record('a', 1, 5), record('d', 4)],
        del: ['b', 'c'],
        sync: false,
      });
      const reopened = await factory.reopen(store);
      assert.deepEqual(byKey(await reopened.open()), [record('a', 1, 5), record('d', 4)]);
      await reopened.destroy();
    });

    it('clears everything before the puts of the same write', async () => {
      const store = await factory.create();
      await store.open();
      await store.write({ clear: false, put: [record('a', 1), record('b', 2)], del: [], sync: true });
      await store.write({ clear: true, put: [record('c', 3)], del: [], sync: true });
      const reopened = await factory.reopen(store);
      assert.deepEqual(await reopened.open(), [record('c', 3)]);
      await reopened.destroy();
    });

    it('holds nothing after destroy', async () => {
      const store = await factory.create();
      await store.open();
      await store.write({ clear: false, put: [record('a', 1)], del: [], sync: true });
      await store.destroy();
      const reopened = await factory.reopen(store);
      assert.deepEqual(await reopened.open(), []);
      await reopened.destroy();
    });
  });
}
