import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import type { DeliveryRecord, DeliveryStore } from '../../nodes/lib/quarantine/delivery-store.js';

/** Makes a store; `reopen` gives a store over the same data as the previous one, after it was closed. */
export interface DeliveryStoreFactory {
  create(): Promise<DeliveryStore>;
  reopen(previous: DeliveryStore): Promise<DeliveryStore>;
}

function counted(key: string, at: number, attempts = 1, lastError?: string): DeliveryRecord {
  const entry = { attempts, firstSeen: at, lastSeen: at + attempts - 1 };
  return { key, entry: lastError === undefined ? entry : { ...entry, lastError } };
}

function quarantined(key: string, at: number, lastError?: string): DeliveryRecord {
  const record = counted(key, at, 5, lastError);
  return { key, entry: { ...record.entry, quarantinedAt: at + 10 } };
}

const byKey = (records: DeliveryRecord[]) => [...records].sort((a, b) => (a.key < b.key ? -1 : 1));

/** The delivery-count storage contract: every store implementation runs these. */
export function deliveryStoreContract(name: string, factory: DeliveryStoreFactory): void {
  describe(`delivery-count store contract: ${name}`, () => {
    it('opens empty', async () => {
      const store = await factory.create();
      assert.deepEqual(await store.open(), []);
      await store.destroy();
    });

    it('gives back counted and quarantined keys, times, attempts and errors intact, after a reopen', async () => {
      const store = await factory.create();
      await store.open();
      const records = [
        counted('id:0190a1b2-0000-7000-8000-000000000001', 1_700_000_000_123.5),
        counted('hash:0123456789abcdef0123456789abcdef', 1_700_000_000_000, 4, 'TypeError: x is undefined'),
        counted('id:é ✓', 0, 4_294_967_295, ''),
        quarantined('id:q1', 1_700_000_000_000),
        quarantined('id:q2', 1, 'Error: ünïcödé ✓\nat line 2'),
      ];
      await store.write({ put: records, del: [], sync: true });
      const reopened = await factory.reopen(store);
      assert.deepEqual(byKey(await reopened.open()), byKey(records));
      await reopened.destroy();
    });

    it('replaces a key written again and deletes keys, in one write', async () => {
      const store = await factory.create();
      await store.open();
      await store.write({ put: [counted('a', 1), counted('b', 2), counted('c', 3)], del: [], sync: true });
      await store.write({
        put: [quarantined('a', 1, 'boom'), counted('d', 4)],
        del: ['b', 'c'],
        sync: false,
      });
      const reopened = await factory.reopen(store);
      assert.deepEqual(byKey(await reopened.open()), [quarantined('a', 1, 'boom'), counted('d', 4)]);
      await reopened.destroy();
    });

    it('holds nothing after destroy', async () => {
      const store = await factory.create();
      await store.open();
      await store.write({ put: [counted('a', 1)], del: [], sync: true });
      await store.destroy();
      const reopened = await factory.reopen(store);
      assert.deepEqual(await reopened.open(), []);
      await reopened.destroy();
    });
  });
}
