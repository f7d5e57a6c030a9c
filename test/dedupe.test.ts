import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import { Deduplicator } from '../nodes/lib/dedupe/deduplicator.js';
import { LevelSeenStore } from '../nodes/lib/dedupe/level-seen-store.js';
import { keyFunction, MissingKeyError } from '../nodes/lib/dedupe/message-key.js';
import { MemoryKeyedStore } from '../nodes/lib/keyed-store.js';
import type { SeenEntry } from '../nodes/lib/dedupe/seen-cache.js';
import { SeenCache, type ForgetReason } from '../nodes/lib/dedupe/seen-cache.js';
import type { SeenStore } from '../nodes/lib/dedupe/seen-store.js';
import { newMessageId, unwrapEnvelope, wrapEnvelope } from '../nodes/lib/end-to-end-id.js';
import { temporaryDirectory } from './support/node-red-process.js';
import { seenStoreContract } from './support/seen-store-contract.js';

const levelDirs = new WeakMap<SeenStore, string>();
const levelStore = (dir: string) => {
  const store = new LevelSeenStore(dir);
  levelDirs.set(store, dir);
  return store;
};

seenStoreContract('memory', {
  create: async () => new MemoryKeyedStore<SeenEntry>(),
  reopen: async (previous) => previous,
});
seenStoreContract('LevelDB', {
  create: async () => levelStore(temporaryDirectory('durable-mqtt-seen-')),
  reopen: async (previous) => {
    await previous.close();
    return levelStore(levelDirs.get(previous) as string);
  },
});

const T0 = 1_700_000_000_000;

describe('seen cache', () => {
  it('counts the copies of a key and keeps the time of the first', () => {
    const cache = new SeenCache({ maxEntries: 10, windowMs: 60_000 });
    assert.equal(cache.see('a', T0).count, 1);
    assert.equal(cache.see('b', T0 + 1).count, 1);
    const { firstSeenAt, lastSeenAt, count } = cache.see('a', T0 + 5);
    assert.deepEqual({ firstSeenAt, lastSeenAt, count }, { firstSeenAt: T0, lastSeenAt: T0 + 5, count: 2 });
    assert.deepEqual(
      [...cache].map(([key]) => key),
      ['b', 'a'],
      'least recently seen first',
    );
    assert.equal(cache.see('a', T0 + 6).count, 3);
    assert.equal(cache.size, 2);
  });

  it('forgets a key once the window has passed since its latest copy', () => {
    const forgotten: [string, ForgetReason][] = [];
    const cache = new SeenCache({ maxEntries: 10, windowMs: 1000 }, (key, reason) =>
      forgotten.push([key, reason]),
    );
    cache.see('a', T0);
    cache.see('b', T0 + 500);
    // A copy inside the window slides it: 'a' is now remembered until T0 + 1900.
    assert.equal(cache.see('a', T0 + 900).count, 2);
    cache.see('c', T0 + 1500);
    assert.deepEqual(forgotten, [['b', 'expired']]);
    assert.equal(cache.peek('b', T0 + 1500), undefined);
    assert.equal(cache.see('a', T0 + 1899).count, 3);
    assert.equal(cache.see('a', T0 + 2899).count, 1, 'a copy a full window after the latest is new');
    assert.deepEqual(forgotten, [
      ['b', 'expired'],
      ['c', 'expired'],
      ['a', 'expired'],
    ]);
  });

  it('keeps no time limit with a window of 0', () => {
    const cache = new SeenCache({ maxEntries: 10, windowMs: 0 });
    cache.see('a', T0);
    assert.equal(cache.see('a', T0 + 365 * 86_400_000).count, 2);
  });

  it('evicts the least recently seen key when the bound is reached', () => {
    const evicted: string[] = [];
    const cache = new SeenCache({ maxEntries: 3, windowMs: 0 }, (key) => evicted.push(key));
    for (const key of ['a', 'b', 'c']) cache.see(key, T0);
    cache.see('a', T0 + 1); // 'a' seen again: 'b' is now the least recently seen
    cache.see('d', T0 + 2);
    assert.deepEqual(evicted, ['b']);
    assert.equal(cache.see('a', T0 + 3).count, 3);
    assert.equal(cache.see('b', T0 + 4).count, 1, 'an evicted key is new again');
    assert.deepEqual(evicted, ['b', 'c']);
  });

  it('holds at most maxEntries keys while 1,000,000 distinct keys stream through (maxEntries 10,000)', () => {
    const maxEntries = 10_000;
    let forgotten = 0;
    const cache = new SeenCache({ maxEntries, windowMs: 3_600_000 }, () => forgotten++);
    let largest = 0;
    for (let i = 0; i < 1_000_000; i++) {
      cache.see(`k${i}`, T0 + i);
      if (cache.size > largest) largest = cache.size;
    }
    assert.equal(largest, maxEntries);
    assert.equal(cache.size, maxEntries);
    assert.equal(forgotten, 1_000_000 - maxEntries, 'every key beyond the bound was evicted');
    // The 10,000 most recent are remembered, the one before them is not.
    assert.equal(cache.peek('k999999', T0 + 1_000_000)?.count, 1);
    assert.equal(cache.peek(`k${1_000_000 - maxEntries}`, T0 + 1_000_000)?.count, 1);
    assert.equal(cache.peek(`k${1_000_000 - maxEntries - 1}`, T0 + 1_000_000), undefined);
  });
});

describe('dedupe keys', () => {
  it('auto: the message id when there is one, else a hash of topic and payload', () => {
    const key = keyFunction({ kind: 'auto', scope: 'global' });
    const id = newMessageId();
    assert.equal(
      key({ messageId: id, topic: 'a', payload: 1 }),
      key({ messageId: id, topic: 'b', payload: 2 }),
    );
    assert.notEqual(key({ messageId: id, payload: 1 }), key({ messageId: newMessageId(), payload: 1 }));
    assert.equal(key({ topic: 't', payload: { n: 1 } }), key({ topic: 't', payload: '{"n":1}' }));
    assert.notEqual(key({ topic: 't', payload: { n: 1 } }), key({ topic: 't', payload: { n: 2 } }));
    assert.notEqual(key({ topic: 't', payload: 'x' }), key({ topic: 'u', payload: 'x' }));
  });

  it('payload: a hash of topic and payload, ignoring the message id', () => {
    const key = keyFunction({ kind: 'payload', scope: 'global' });
    assert.equal(
      key({ messageId: newMessageId(), topic: 't', payload: Buffer.from('x') }),
      key({ messageId: newMessageId(), topic: 't', payload: 'x' }),
    );
    // The separator keeps topic and payload apart: "ab" + "c" is not "a" + "bc".
    assert.notEqual(key({ topic: 'ab', payload: 'c' }), key({ topic: 'a', payload: 'bc' }));
  });

  it('property: the value at the property, by type; a missing value is an error', () => {
    const key = keyFunction({
      kind: 'property',
      scope: 'global',
      readProperty: (msg) => (msg.payload as { seq?: unknown } | undefined)?.seq,
    });
    assert.equal(key({ payload: { seq: 7, at: 1 } }), key({ payload: { seq: 7, at: 2 } }));
    assert.notEqual(key({ payload: { seq: 7 } }), key({ payload: { seq: '7' } }));
    assert.notEqual(key({ payload: { seq: 7 } }), key({ payload: { seq: 8 } }));
    assert.throws(() => key({ payload: {} }), MissingKeyError);
    assert.throws(() => key({ payload: { seq: null } }), MissingKeyError);
    // A long value is hashed: every remembered key has a bounded size.
    assert.ok(key({ payload: { seq: 'x'.repeat(10_000) } }).length <= 64);
    assert.notEqual(
      key({ payload: { seq: 'x'.repeat(10_000) } }),
      key({ payload: { seq: 'x'.repeat(10_001) } }),
    );
  });

  it('per topic: the same key on two topics is two keys', () => {
    const readProperty = (msg: { payload?: unknown }) => (msg.payload as { seq: number }).seq;
    const global = keyFunction({ kind: 'property', scope: 'global', readProperty });
    const perTopic = keyFunction({ kind: 'property', scope: 'topic', readProperty });
    const a = { topic: 'plant/a', payload: { seq: 1 } };
    const b = { topic: 'plant/b', payload: { seq: 1 } };
    assert.equal(global(a), global(b));
    assert.notEqual(perTopic(a), perTopic(b));
    assert.equal(perTopic(a), perTopic({ ...a }));
  });
});

describe('message ids and the MQTT 3.1.1 envelope', () => {
  it('makes UUIDv7 ids, unique and sorted in the order they were made, even many per millisecond', () => {
    const ids = Array.from({ length: 20_000 }, () => newMessageId());
    assert.equal(new Set(ids).size, ids.length);
    assert.deepEqual([...ids].sort(), ids);
    for (const id of ids.slice(0, 100))
      assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const at = Number.parseInt(ids[0].replace(/-/g, '').slice(0, 12), 16);
    assert.ok(Math.abs(at - Date.now()) < 60_000, 'the first 48 bits are the time in ms');
  });

  it('wraps and unwraps text and binary payloads byte for byte', () => {
    const id = newMessageId();
    for (const payload of [
      Buffer.from('{"n":1}'),
      Buffer.from('héllo'),
      Buffer.from([0xff, 0, 0xfe]),
      Buffer.alloc(0),
    ]) {
      const wrapped = wrapEnvelope(id, payload);
      assert.equal(JSON.parse(wrapped.toString()).id, id);
      assert.deepEqual(unwrapEnvelope(wrapped), { id, payload });
    }
    assert.deepEqual(JSON.parse(wrapEnvelope(id, '{"n":1}').toString()), { id, payload: '{"n":1}' });
  });

  it('leaves payloads that are not envelopes alone', () => {
    for (const text of [
      '{"n":1}',
      '{"id":"x"}',
      '{"id":"x","payload":1}',
      '{"id":"x","payload":"p","extra":1}',
      '{"id":',
      'plain',
    ])
      assert.equal(unwrapEnvelope(Buffer.from(text)), undefined, text);
  });
});

describe('deduplicator', () => {
  it('writes a burst of first copies in a few batches, not one write per message', async () => {
    const store = new MemoryKeyedStore<SeenEntry>();
    let writes = 0;
    const write = store.write.bind(store);
    store.write = async (change) => {
      writes++;
      return write(change);
    };
    const deduplicator = await Deduplicator.open({ maxEntries: 10_000, windowMs: 0 }, store);
    const commits = [];
    for (let i = 0; i < 1000; i++) {
      assert.equal(deduplicator.check(`k${i}`).duplicate, false);
      commits.push(deduplicator.committed());
    }
    await Promise.all(commits);
    assert.equal(store.size, 1000);
    assert.ok(writes <= 3, `1000 first copies took ${writes} writes`);
  });

  it('keeps the seen-set across a reopen: a duplicate after a restart is caught, with its first time and count', async () => {
    const dir = temporaryDirectory('durable-mqtt-dedupe-');
    const first = await Deduplicator.open({ maxEntries: 100, windowMs: 60_000 }, new LevelSeenStore(dir), T0);
    first.check('a', T0);
    first.check('b', T0 + 1);
    first.check('a', T0 + 2);
    await first.committed();
    await first.close();
    const second = await Deduplicator.open(
      { maxEntries: 100, windowMs: 60_000 },
      new LevelSeenStore(dir),
      T0 + 10,
    );
    assert.deepEqual(second.check('a', T0 + 10), { duplicate: true, firstSeenAt: T0, count: 3 });
    assert.equal(second.check('c', T0 + 11).duplicate, false);
    await second.destroy();
  });

  it('drops on reopen the stored keys that expired or that a lowered bound leaves out, on disk too', async () => {
    const store = new MemoryKeyedStore<SeenEntry>();
    const first = await Deduplicator.open({ maxEntries: 100, windowMs: 1000 }, store, T0);
    for (let i = 0; i < 10; i++) first.check(`k${i}`, T0 + i * 100);
    await first.committed();
    // At T0 + 1450, k0..k4 (last seen up to T0 + 400) have expired; a bound of 3 keeps k7, k8, k9.
    const second = await Deduplicator.open({ maxEntries: 3, windowMs: 1000 }, store, T0 + 1450);
    assert.equal(second.size, 3);
    assert.equal(second.check('k9', T0 + 1450).duplicate, true);
    assert.equal(second.check('k6', T0 + 1450).duplicate, false);
    await second.committed();
    assert.ok(store.size <= 3, `${store.size} keys stored with a bound of 3`);
  });

  it('keeps the store within maxEntries while 1,000,000 distinct keys stream through (maxEntries 10,000)', async () => {
    const store = new MemoryKeyedStore<SeenEntry>();
    const deduplicator = await Deduplicator.open({ maxEntries: 10_000, windowMs: 0 }, store);
    let largestStore = 0;
    for (let i = 0; i < 1_000_000; i++) {
      deduplicator.check(`k${i}`);
      if (i % 50_000 === 49_999) {
        await deduplicator.committed();
        largestStore = Math.max(largestStore, store.size);
      }
    }
    await deduplicator.committed();
    assert.equal(deduplicator.size, 10_000);
    assert.equal(largestStore, 10_000);
    assert.equal(store.size, 10_000);
  });

  it('forgets every key on reset, on disk too', async () => {
    const store = new MemoryKeyedStore<SeenEntry>();
    const deduplicator = await Deduplicator.open({ maxEntries: 100, windowMs: 0 }, store);
    deduplicator.check('a');
    await deduplicator.committed();
    await deduplicator.reset();
    assert.equal(store.size, 0);
    assert.equal(deduplicator.check('a').duplicate, false);
  });

  it('rejects the waiters of a failed write and writes their keys with the next one', async () => {
    const store = new MemoryKeyedStore<SeenEntry>();
    const write = store.write.bind(store);
    let fail = true;
    store.write = async (change) => {
      if (fail) throw new Error('disk full');
      return write(change);
    };
    const deduplicator = await Deduplicator.open({ maxEntries: 100, windowMs: 0 }, store);
    deduplicator.check('a');
    await assert.rejects(deduplicator.committed(), /disk full/);
    fail = false;
    deduplicator.check('b');
    await deduplicator.committed();
    assert.equal(store.size, 2);
  });
});
