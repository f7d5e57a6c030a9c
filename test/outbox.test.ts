import assert from 'node:assert/strict';
import { once } from 'node:events';
import { closeSync, openSync, readdirSync, statSync, truncateSync, writeSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'mocha';
import { ClassicLevel } from 'classic-level';
import { LevelOutboxStore } from '../nodes/lib/outbox/level-store.js';
import { MemoryOutboxStore } from '../nodes/lib/outbox/memory-store.js';
import { Outbox, type NewRecord } from '../nodes/lib/outbox/outbox.js';
import { OutboxFullError, type OutboxLimits } from '../nodes/lib/outbox/limits.js';
import type { OutboxStore } from '../nodes/lib/outbox/store.js';
import { outboxStoreContract } from './support/outbox-store-contract.js';
import { temporaryDirectory } from './support/node-red-process.js';

const tempDir = () => temporaryDirectory('durable-mqtt-outbox-');
const levelDirs = new WeakMap<OutboxStore, string>();

outboxStoreContract('memory', {
  create: async () => new MemoryOutboxStore(),
  reopen: async (previous) => previous,
});
outboxStoreContract('LevelDB', {
  create: async () => {
    const dir = tempDir();
    const store = new LevelOutboxStore(dir);
    levelDirs.set(store, dir);
    return store;
  },
  reopen: async (previous) => {
    await previous.close();
    const dir = levelDirs.get(previous) as string;
    const store = new LevelOutboxStore(dir);
    levelDirs.set(store, dir);
    return store;
  },
});

const LIMITS: OutboxLimits = { maxMessages: 1_000_000, maxBytes: 1e9, overflow: 'rejectNew' };
const message = (i: number, bytes = 8): NewRecord => ({
  topic: `m/${i}`,
  payload: Buffer.alloc(bytes, i & 255),
  qos: 1,
  retain: false,
});
const seqs = (deliveries: { record: { seq: number } }[]) => deliveries.map((d) => d.record.seq);

describe('outbox', () => {
  it('hands records out oldest first, puts a released one back ahead of newer ones, forgets acknowledged ones', async () => {
    const outbox = await Outbox.open(new MemoryOutboxStore(), LIMITS);
    for (let i = 1; i <= 5; i++) await outbox.append(message(i));
    assert.equal(outbox.count, 5);
    assert.equal(outbox.bytes, 40);
    const first = outbox.take(3);
    assert.deepEqual(seqs(first), [1, 2, 3]);
    assert.equal(outbox.inFlightCount, 3);
    await outbox.acknowledge(1);
    outbox.release(3);
    outbox.release(2);
    const next = outbox.take(10);
    assert.deepEqual(seqs(next), [2, 3, 4, 5]);
    assert.deepEqual(
      next.map((d) => [d.attempt, d.possiblySent]),
      [
        [2, true],
        [2, true],
        [1, false],
        [1, false],
      ],
    );
    for (const seq of [2, 3, 4, 5]) await outbox.acknowledge(seq);
    assert.equal(outbox.count, 0);
    assert.equal(outbox.bytes, 0);
  });

  it('commits concurrent appends in a few batches, not one write per message', async () => {
    const store = new MemoryOutboxStore();
    let writes = 0;
    const write = store.write.bind(store);
    store.write = async (change) => {
      writes++;
      return write(change);
    };
    const outbox = await Outbox.open(store, LIMITS);
    await Promise.all(Array.from({ length: 1000 }, (_, i) => outbox.append(message(i))));
    assert.equal(outbox.count, 1000);
    assert.ok(writes <= 5, `1000 appends took ${writes} writes`);
  });

  it('never writes a record acknowledged before its write, and resolves its append all the same', async () => {
    const store = new MemoryOutboxStore();
    const written: { put: number[]; del: number[]; sync: boolean }[] = [];
    const write = store.write.bind(store);
    store.write = async (change) => {
      written.push({ put: change.put.map((r) => r.seq), del: change.del, sync: change.sync });
      return write(change);
    };
    const outbox = await Outbox.open(store, LIMITS);
    const appends = [1, 2, 3].map((i) => outbox.append(message(i)));
    // In memory before their write: a sender can have them at once.
    assert.deepEqual(seqs(outbox.take(3)), [1, 2, 3]);
    const acknowledged = [outbox.acknowledge(1), outbox.acknowledge(2)];
    await Promise.all([...appends, ...acknowledged]);
    assert.deepEqual(written, [{ put: [3], del: [], sync: true }]);
    assert.deepEqual(
      (await store.read(0, 10)).map((r) => r.seq),
      [3],
    );
    await outbox.acknowledge(3);
    assert.deepEqual(written[1], { put: [], del: [3], sync: false });
    assert.equal(outbox.count, 0);
    assert.equal(outbox.bytes, 0);
  });

  it('fails the appends of a write that fails, and sends none of its records', async () => {
    const store = new MemoryOutboxStore();
    const write = store.write.bind(store);
    let failNext = true;
    store.write = async (change) => {
      if (failNext) {
        failNext = false;
        throw new Error('disk full');
      }
      return write(change);
    };
    const outbox = await Outbox.open(store, LIMITS);
    const appends = [1, 2].map((i) => outbox.append(message(i)));
    assert.deepEqual(seqs(outbox.take(1)), [1]);
    for (const append of appends) await assert.rejects(append, /disk full/);
    assert.equal(outbox.count, 0);
    assert.deepEqual(outbox.take(10), [], 'a record whose write failed is not sent');
    // The one sent before the failure may still be acknowledged: nothing is left to forget.
    await outbox.acknowledge(1);
    assert.equal(outbox.count, 0);
    await outbox.append(message(3));
    assert.deepEqual(seqs(outbox.take(10)), [3]);
    assert.deepEqual(
      (await store.read(0, 10)).map((r) => r.seq),
      [3],
    );
  });

  it('refuses a new message with OutboxFullError under rejectNew, by count and by bytes', async () => {
    const byCount = await Outbox.open(new MemoryOutboxStore(), {
      maxMessages: 2,
      maxBytes: 1e6,
      overflow: 'rejectNew',
    });
    await byCount.append(message(1));
    await byCount.append(message(2));
    await assert.rejects(byCount.append(message(3)), OutboxFullError);
    assert.equal(byCount.count, 2);
    const byBytes = await Outbox.open(new MemoryOutboxStore(), {
      maxMessages: 100,
      maxBytes: 20,
      overflow: 'rejectNew',
    });
    await byBytes.append(message(1, 15));
    await assert.rejects(byBytes.append(message(2, 6)), OutboxFullError);
    await byBytes.append(message(3, 5));
    assert.equal(byBytes.bytes, 20);
  });

  it('evicts the oldest waiting message under dropOldest, never one in flight, and says which', async () => {
    const outbox = await Outbox.open(new MemoryOutboxStore(), {
      maxMessages: 3,
      maxBytes: 1e6,
      overflow: 'dropOldest',
    });
    const dropped: number[] = [];
    outbox.on('dropped', (record) => dropped.push(record.seq));
    for (let i = 1; i <= 3; i++) await outbox.append(message(i));
    outbox.take(1); // seq 1 in flight
    await outbox.append(message(4));
    await outbox.append(message(5));
    assert.deepEqual(dropped, [2, 3]);
    assert.equal(outbox.count, 3);
    assert.deepEqual(seqs(outbox.take(10)), [4, 5]);
  });

  it('purges every waiting record, those only in the store too, each with reason purged; those in flight stay', async () => {
    const dir = tempDir();
    const outbox = await Outbox.open(new LevelOutboxStore(dir), LIMITS);
    // More than the outbox reads ahead into memory (500): the rest are only on disk.
    const appended: Promise<void>[] = [];
    for (let i = 1; i <= 1200; i++) appended.push(outbox.append(message(i)));
    await Promise.all(appended);
    const inFlight = seqs(outbox.take(5));
    const dropped: { seq: number; reason: string }[] = [];
    outbox.on('dropped', (record, _live, reason) => dropped.push({ seq: record.seq, reason }));
    assert.equal(await outbox.purge(), 1195);
    assert.deepEqual(
      dropped,
      Array.from({ length: 1195 }, (_, i) => ({ seq: i + 6, reason: 'purged' })),
    );
    assert.equal(outbox.count, 5);
    assert.equal(outbox.bytes, 40);
    for (const seq of inFlight) await outbox.acknowledge(seq);
    assert.equal(outbox.count, 0);
    await outbox.append(message(1201));
    assert.deepEqual(seqs(outbox.take(10)), [1201]);
    await outbox.close();
    // Nothing purged comes back with the store.
    const reopened = await Outbox.open(new LevelOutboxStore(dir), LIMITS);
    assert.equal(reopened.count, 1);
    assert.deepEqual(seqs(reopened.take(10)), [1201]);
    await reopened.close();
  });

  it('delivers every record stored before its bounds shrank below them, and evicts none of them for a new one', async () => {
    const store = new MemoryOutboxStore();
    const roomy = await Outbox.open(store, LIMITS);
    for (let i = 1; i <= 5; i++) await roomy.append(message(i));
    await roomy.close();
    const outbox = await Outbox.open(store, { maxMessages: 2, maxBytes: 1e9, overflow: 'dropOldest' });
    assert.equal(outbox.overBound, true);
    const dropped: string[] = [];
    outbox.on('dropped', (record) => dropped.push(record.topic));
    await assert.rejects(outbox.append(message(6)), OutboxFullError);
    assert.deepEqual(dropped, [], 'a record kept over the bound is not evicted for a new one');
    const sent = outbox.take(10);
    assert.deepEqual(seqs(sent), [1, 2, 3, 4, 5]);
    for (const seq of seqs(sent)) await outbox.acknowledge(seq);
    assert.equal(outbox.overBound, false);
    // Back within its bounds, dropOldest applies to what comes next as always.
    for (let i = 7; i <= 9; i++) await outbox.append(message(i));
    assert.deepEqual(dropped, ['m/7']);
    assert.equal(outbox.count, 2);
  });

  it('keeps memory bounded: a backlog larger than the read-ahead is streamed from the store in order', async () => {
    const outbox = await Outbox.open(new LevelOutboxStore(tempDir()), LIMITS);
    const total = 3000;
    await Promise.all(Array.from({ length: total }, (_, i) => outbox.append(message(i + 1))));
    const ready = (outbox as unknown as { ready: unknown[] }).ready;
    assert.ok(ready.length <= 500, `${ready.length} records held in memory`);
    const order: number[] = [];
    for (;;) {
      let batch = outbox.take(64);
      // The next records are being read from the store: 'ready' says when they are in.
      if (batch.length === 0 && outbox.count > 0) {
        await once(outbox, 'ready');
        batch = outbox.take(64);
      }
      if (batch.length === 0) break;
      order.push(...seqs(batch));
      for (const seq of seqs(batch)) await outbox.acknowledge(seq);
      assert.ok(ready.length <= 500);
    }
    assert.deepEqual(
      order,
      Array.from({ length: total }, (_, i) => i + 1),
    );
    await outbox.close();
  });

  it('keeps waiting and in-flight records across a close and reopen, and marks possibly sent ones', async () => {
    const dir = tempDir();
    const outbox = await Outbox.open(new LevelOutboxStore(dir), LIMITS);
    for (let i = 1; i <= 4; i++) await outbox.append(message(i));
    outbox.take(2);
    await outbox.acknowledge(1);
    await outbox.close();
    const reopened = await Outbox.open(new LevelOutboxStore(dir), LIMITS);
    assert.equal(reopened.count, 3);
    const deliveries = reopened.take(10);
    assert.deepEqual(seqs(deliveries), [2, 3, 4]);
    assert.deepEqual(
      deliveries.map((d) => d.possiblySent),
      [true, false, false],
    );
    assert.deepEqual(deliveries[0].record.payload, Buffer.alloc(8, 2));
    await reopened.append(message(5));
    assert.deepEqual(seqs(reopened.take(10)), [5], 'sequence numbers continue after a reopen');
    await reopened.close();
  });

  it('reads the records of earlier versions, whose msg was a JSON string inside the header', async () => {
    const dir = tempDir();
    const db = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    const header = Buffer.from(
      JSON.stringify({
        seq: 1,
        queuedAt: 1,
        topic: 'old',
        qos: 1,
        retain: false,
        msg: '{"_msgid":"a","x":1}',
      }),
    );
    const length = Buffer.alloc(4);
    length.writeUInt32BE(header.length);
    const key = Buffer.alloc(9);
    key[0] = 0x72;
    key.writeBigUInt64BE(1n, 1);
    await db.put(key, Buffer.concat([length, header, Buffer.from('bytes')]));
    await db.put(
      Buffer.from('m'),
      Buffer.from(JSON.stringify({ nextSeq: 2, count: 1, bytes: 5, sentHighWater: 0 })),
    );
    await db.close();
    const store = new LevelOutboxStore(dir);
    await store.open();
    const [record] = await store.read(0, 10);
    assert.equal(record.msg, '{"_msgid":"a","x":1}');
    assert.deepEqual(record.payload, Buffer.from('bytes'));
    await store.write({
      put: [{ ...record, seq: 2 }],
      del: [],
      meta: { nextSeq: 3, count: 2, bytes: 10, sentHighWater: 0 },
      sync: false,
    });
    const both = await store.read(0, 10);
    assert.deepEqual(
      both.map((r) => JSON.parse(r.msg as string)),
      [
        { _msgid: 'a', x: 1 },
        { _msgid: 'a', x: 1 },
      ],
    );
    await store.close();
  });

  for (const damage of ['a truncated tail', 'a tail overwritten with garbage'] as const) {
    it(`opens after ${damage} (torn write), keeping every intact record`, async () => {
      const dir = tempDir();
      const outbox = await Outbox.open(new LevelOutboxStore(dir), LIMITS);
      for (let i = 1; i <= 100; i++) await outbox.append(message(i));
      await outbox.close();
      const log = path.join(dir, readdirSync(dir).find((file) => file.endsWith('.log')) as string);
      const size = statSync(log).size;
      if (damage === 'a truncated tail') {
        truncateSync(log, size - 10);
      } else {
        const fd = openSync(log, 'r+');
        writeSync(fd, Buffer.alloc(12, 0xa5), 0, 12, size - 12);
        closeSync(fd);
      }
      const reopened = await Outbox.open(new LevelOutboxStore(dir), LIMITS);
      // Only the last batch (one message, never acknowledged to its sender) is gone.
      assert.equal(reopened.count, 99);
      assert.deepEqual(
        seqs(reopened.take(1000)),
        Array.from({ length: 99 }, (_, i) => i + 1),
      );
      // A checksum failure is reported; a short tail is taken for an unfinished write and skipped quietly.
      if (damage === 'a tail overwritten with garbage') {
        assert.match(reopened.recoveryNotes.join('\n'), /dropping \d+ bytes/);
      }
      await reopened.close();
    });
  }
});
