import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import { EMPTY_META, type OutboxStore, type StoredRecord } from '../../nodes/lib/outbox/store.js';

/** Makes a store; `reopen` gives a store over the same data as the previous one, after it was closed. */
export interface StoreFactory {
  create(): Promise<OutboxStore>;
  reopen(previous: OutboxStore): Promise<OutboxStore>;
}

function record(seq: number, extra: Partial<StoredRecord> = {}): StoredRecord {
  return {
    seq,
    queuedAt: 1_700_000_000_000 + seq,
    topic: `t/${seq}`,
    payload: Buffer.from([seq & 255, 0, 255]),
    qos: 1,
    retain: false,
    ...extra,
  };
}

/** The outbox storage contract: every store implementation runs these. */
export function outboxStoreContract(name: string, factory: StoreFactory): void {
  describe(`outbox store contract: ${name}`, () => {
    it('opens empty with the initial counters', async () => {
      const store = await factory.create();
      const opened = await store.open();
      assert.deepEqual(opened.meta, EMPTY_META);
      assert.deepEqual(await store.read(0, 10), []);
      await store.destroy();
    });

    it('reads records back in sequence order, after a given seq and up to a limit, bytes intact', async () => {
      const store = await factory.create();
      await store.open();
      const records = [
        record(3),
        record(1, { payload: Buffer.alloc(0) }),
        record(2, {
          properties: { contentType: 'x' },
          messageId: '0190f3c2-7d1e-7a00-8000-000000000001',
          msg: '{"a":1}',
          retain: true,
          qos: 2,
        }),
      ];
      await store.write({
        put: records,
        del: [],
        meta: { nextSeq: 4, count: 3, bytes: 6, sentHighWater: 0 },
        sync: true,
      });
      assert.deepEqual(
        (await store.read(0, 10)).map((r) => r.seq),
        [1, 2, 3],
      );
      assert.deepEqual(await store.read(1, 1), [records[2]]);
      assert.deepEqual(await store.read(3, 10), []);
      assert.deepEqual((await store.read(0, 10))[0].payload, Buffer.alloc(0));
      await store.destroy();
    });

    it('deletes records and replaces the counters in the same write', async () => {
      const store = await factory.create();
      await store.open();
      await store.write({
        put: [record(1), record(2), record(3)],
        del: [],
        meta: { nextSeq: 4, count: 3, bytes: 9, sentHighWater: 0 },
        sync: true,
      });
      await store.write({
        put: [record(4)],
        del: [1, 3],
        meta: { nextSeq: 5, count: 2, bytes: 6, sentHighWater: 3 },
        sync: false,
      });
      assert.deepEqual(
        (await store.read(0, 10)).map((r) => r.seq),
        [2, 4],
      );
      const reopened = await factory.reopen(store);
      const { meta } = await reopened.open();
      assert.deepEqual(meta, { nextSeq: 5, count: 2, bytes: 6, sentHighWater: 3 });
      assert.deepEqual(
        (await reopened.read(0, 10)).map((r) => r.seq),
        [2, 4],
      );
      await reopened.destroy();
    });

    it('keeps order by number, not by text, beyond 2^32 records', async () => {
      const store = await factory.create();
      await store.open();
      const seqs = [9, 10, 255, 256, 65_536, 2 ** 32 + 1];
      await store.write({
        put: seqs.map((seq) => record(seq)),
        del: [],
        meta: { ...EMPTY_META, nextSeq: 2 ** 32 + 2, count: seqs.length },
        sync: true,
      });
      assert.deepEqual(
        (await store.read(0, 10)).map((r) => r.seq),
        seqs,
      );
      await store.destroy();
    });
  });
}
