import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, afterEach, before, beforeEach, describe, it } from 'mocha';
import mqtt from 'mqtt';
import { DeliveryCounts, type DeliveryVerdict } from '../nodes/lib/quarantine/delivery-counts.js';
import type { DeliveryStore } from '../nodes/lib/quarantine/delivery-store.js';
import { LevelDeliveryStore } from '../nodes/lib/quarantine/level-delivery-store.js';
import { MemoryKeyedStore } from '../nodes/lib/keyed-store.js';
import type { DeliveryEntry, DeliveryStoreWrite } from '../nodes/lib/quarantine/delivery-store.js';
import { messageKey } from '../nodes/lib/quarantine/message-key.js';
import { SuspectGate } from '../nodes/lib/quarantine/suspect-gate.js';
import { crashingDelivery, HeldStore, turns, WatchedStore } from './support/delivery-counts.js';
import { deliveryStoreContract } from './support/delivery-store-contract.js';
import { temporaryDirectory } from './support/node-red-process.js';
import { allNodes, collect, helper } from './support/node-red.js';
import { brokerConfigNode, embeddedBrokerNode, helperNode, mqttInNode } from './support/flows.js';
import { freePort } from './support/ports.js';
import { delay, waitFor } from './support/wait.js';
import { MESSAGE_ID_PROPERTY } from '../nodes/lib/end-to-end-id.js';

const levelDirs = new WeakMap<DeliveryStore, string>();
const levelStore = (dir: string) => {
  const store = new LevelDeliveryStore(dir);
  levelDirs.set(store, dir);
  return store;
};

deliveryStoreContract('memory', {
  create: async () => new MemoryKeyedStore<DeliveryEntry>(),
  reopen: async (previous) => previous,
});
deliveryStoreContract('LevelDB', {
  create: async () => levelStore(temporaryDirectory('durable-mqtt-deliveries-')),
  reopen: async (previous) => {
    await previous.close();
    return levelStore(levelDirs.get(previous) as string);
  },
});

const T0 = 1_700_000_000_000;

const deliver = (attempts: number): DeliveryVerdict => ({ kind: 'deliver', attempts });

describe('delivery counts: the counting rules', () => {
  it('passes deliveries 1 to maxDeliveries to the flow and quarantines the next one, with its history', async () => {
    const store = new MemoryKeyedStore<DeliveryEntry>();
    const counts = await DeliveryCounts.open(store, { maxDeliveries: 3 }, T0);
    for (let attempt = 1; attempt <= 3; attempt++) {
      assert.deepEqual(await counts.begin('id:a', T0 + attempt), deliver(attempt), `delivery ${attempt}`);
      if (attempt < 3) counts.failed('id:a', `Error: boom ${attempt}`);
    }
    const entry = { key: 'id:a', attempts: 3, firstSeen: T0 + 1, lastSeen: T0 + 4, quarantinedAt: T0 + 4 };
    // The third delivery crashed without `failed`: the error of the second is the latest known.
    const expected = { ...entry, lastError: 'Error: boom 2' };
    assert.deepEqual(await counts.begin('id:a', T0 + 4), { kind: 'quarantine', entry: expected });
    assert.deepEqual(await counts.begin('id:a', T0 + 5), {
      kind: 'quarantined-before',
      entry: { ...expected, lastSeen: T0 + 5 },
    });
    const fresh = await counts.begin('id:a', T0 + 6, { fresh: true });
    assert.equal(fresh.kind, 'quarantined-before', 'a fresh copy of a quarantined key');
    assert.deepEqual(counts.quarantined(), [{ ...expected, lastSeen: T0 + 6 }]);
    await counts.committed();
    const stored = {
      attempts: 3,
      firstSeen: T0 + 1,
      lastSeen: T0 + 6,
      lastError: 'Error: boom 2',
      quarantinedAt: T0 + 4,
    };
    assert.deepEqual(await store.open(), [{ key: 'id:a', entry: stored }]);
  });

  it('gives the flow 5 deliveries of a key by default', async () => {
    const counts = await DeliveryCounts.open(new MemoryKeyedStore<DeliveryEntry>());
    for (let attempt = 1; attempt <= 5; attempt++)
      assert.deepEqual(await counts.begin('k'), deliver(attempt));
    const verdict = await counts.begin('k');
    assert.equal(verdict.kind, 'quarantine');
    assert.equal(verdict.kind === 'quarantine' && verdict.entry.attempts, 5);
  });

  it('forgets a completed key, so its next delivery is the first again, and leaves other keys counted', async () => {
    const store = new MemoryKeyedStore<DeliveryEntry>();
    const counts = await DeliveryCounts.open(store, { maxDeliveries: 2 }, T0);
    await counts.begin('a', T0);
    await counts.begin('b', T0);
    await counts.begin('a', T0 + 1);
    counts.completed('a');
    await counts.committed();
    assert.equal(store.size, 1);
    assert.deepEqual(await counts.begin('a', T0 + 2), deliver(1));
    assert.deepEqual(await counts.begin('b', T0 + 2), deliver(2));
  });

  it('restarts the count of a fresh delivery at 1, with its own first time and no earlier error', async () => {
    const counts = await DeliveryCounts.open(new MemoryKeyedStore<DeliveryEntry>(), { maxDeliveries: 2 }, T0);
    await counts.begin('hash:x', T0);
    counts.failed('hash:x', 'Error: old message');
    await counts.begin('hash:x', T0 + 1);
    assert.deepEqual(await counts.begin('hash:x', T0 + 5, { fresh: true }), deliver(1));
    assert.deepEqual(await counts.begin('hash:x', T0 + 6), deliver(2));
    assert.deepEqual(await counts.begin('hash:x', T0 + 7), {
      kind: 'quarantine',
      entry: { key: 'hash:x', attempts: 2, firstSeen: T0 + 5, lastSeen: T0 + 7, quarantinedAt: T0 + 7 },
    });
  });

  it('ignores completed and failed for a key it does not count', async () => {
    const store = new WatchedStore();
    const counts = await DeliveryCounts.open(store, { maxDeliveries: 1 }, T0);
    counts.completed('nobody');
    counts.failed('nobody', 'Error');
    await counts.committed();
    assert.equal(store.writes.length, 0);
  });

  it('lets a forgotten quarantined key reach the flow again as a first delivery, on disk too', async () => {
    const store = new MemoryKeyedStore<DeliveryEntry>();
    const counts = await DeliveryCounts.open(store, { maxDeliveries: 1 }, T0);
    await counts.begin('a', T0);
    assert.equal((await counts.begin('a', T0 + 1)).kind, 'quarantine');
    assert.equal(await counts.forget('a'), true);
    assert.equal(store.size, 0);
    assert.deepEqual(counts.quarantined(), []);
    assert.deepEqual(await counts.begin('a', T0 + 2), deliver(1));
    assert.equal(await counts.forget('a'), false, 'a counted key is forgotten too, but was not quarantined');
    assert.equal(await counts.forget('never seen'), false);
    assert.deepEqual(await counts.begin('a', T0 + 3), deliver(1));
  });

  it('lists the quarantined keys, the most recently quarantined last', async () => {
    const counts = await DeliveryCounts.open(new MemoryKeyedStore<DeliveryEntry>(), { maxDeliveries: 1 }, T0);
    for (const [i, key] of ['c', 'a', 'b'].entries()) {
      await counts.begin(key, T0 + i);
      await counts.begin(key, T0 + 10 + i);
    }
    assert.deepEqual(
      counts.quarantined().map(({ key, quarantinedAt }) => [key, quarantinedAt]),
      [
        ['c', T0 + 10],
        ['a', T0 + 11],
        ['b', T0 + 12],
      ],
    );
  });

  it('keeps counts, errors and quarantines across a reopen of the LevelDB store', async () => {
    const dir = temporaryDirectory('durable-mqtt-deliveries-');
    const first = await DeliveryCounts.open(new LevelDeliveryStore(dir), { maxDeliveries: 2 }, T0);
    await first.begin('counted', T0);
    first.failed('counted', 'Error: first');
    await first.begin('quarantined', T0);
    await first.begin('quarantined', T0 + 1);
    await first.begin('quarantined', T0 + 2);
    await first.close();
    const second = await DeliveryCounts.open(new LevelDeliveryStore(dir), { maxDeliveries: 2 }, T0 + 10);
    assert.deepEqual(second.quarantined(), [
      { key: 'quarantined', attempts: 2, firstSeen: T0, lastSeen: T0 + 2, quarantinedAt: T0 + 2 },
    ]);
    assert.deepEqual(await second.begin('counted', T0 + 10), deliver(2));
    assert.deepEqual(await second.begin('counted', T0 + 11), {
      kind: 'quarantine',
      entry: {
        key: 'counted',
        attempts: 2,
        firstSeen: T0,
        lastSeen: T0 + 11,
        lastError: 'Error: first',
        quarantinedAt: T0 + 11,
      },
    });
    assert.equal((await second.begin('quarantined', T0 + 12)).kind, 'quarantined-before');
    await second.destroy();
  });

  it('refuses bounds that are not whole numbers of 1 or more', async () => {
    const store = new MemoryKeyedStore<DeliveryEntry>();
    await assert.rejects(DeliveryCounts.open(store, { maxDeliveries: 0 }), /maxDeliveries/);
    await assert.rejects(DeliveryCounts.open(store, { maxEntries: 1.5 }), /maxEntries/);
    await assert.rejects(DeliveryCounts.open(store, { quarantineKeep: -1 }), /quarantineKeep/);
    await assert.rejects(DeliveryCounts.open(store, { forgetAfterMs: -1 }), /forgetAfterMs/);
  });
});

describe('delivery counts: bounds and expiry', () => {
  it('forgets the least recently delivered key beyond maxEntries, on disk too', async () => {
    const store = new MemoryKeyedStore<DeliveryEntry>();
    const counts = await DeliveryCounts.open(store, { maxEntries: 2 }, T0);
    await counts.begin('a', T0);
    await counts.begin('b', T0 + 1);
    await counts.begin('a', T0 + 2);
    await counts.begin('c', T0 + 3);
    await counts.committed();
    assert.deepEqual((await store.open()).map(({ key }) => key).sort(), ['a', 'c']);
    assert.deepEqual(await counts.begin('a', T0 + 4), deliver(3));
    assert.deepEqual(await counts.begin('b', T0 + 5), deliver(1), 'b was evicted');
  });

  it('holds at most maxEntries counted keys, in memory and on disk, while 200,000 keys stream through', async () => {
    const store = new MemoryKeyedStore<DeliveryEntry>();
    const counts = await DeliveryCounts.open(store, { maxEntries: 10_000 }, T0);
    let largestStore = 0;
    for (let turn = 0; turn < 200; turn++) {
      const begins = [];
      for (let i = 0; i < 1000; i++) begins.push(counts.begin(`k${turn * 1000 + i}`, T0 + turn));
      await Promise.all(begins);
      largestStore = Math.max(largestStore, store.size);
    }
    assert.equal(counts.countingSize, 10_000);
    assert.equal(largestStore, 10_000);
  });

  it('keeps at most quarantineKeep quarantined keys, dropping the oldest quarantine first, on disk too', async () => {
    const store = new MemoryKeyedStore<DeliveryEntry>();
    const counts = await DeliveryCounts.open(store, { maxDeliveries: 1, quarantineKeep: 2 }, T0);
    for (const [i, key] of ['a', 'b', 'c'].entries()) {
      await counts.begin(key, T0 + i);
      await counts.begin(key, T0 + 10 + i);
    }
    await counts.committed();
    assert.deepEqual(
      counts.quarantined().map(({ key }) => key),
      ['b', 'c'],
    );
    assert.deepEqual((await store.open()).map(({ key }) => key).sort(), ['b', 'c']);
    assert.deepEqual(await counts.begin('a', T0 + 20), deliver(1), 'a quarantine dropped by the bound');
  });

  it('forgets a counted key forgetAfterMs after its latest delivery, and keeps quarantined keys', async () => {
    const store = new MemoryKeyedStore<DeliveryEntry>();
    const counts = await DeliveryCounts.open(store, { maxDeliveries: 1, forgetAfterMs: 1000 }, T0);
    await counts.begin('quarantined', T0);
    await counts.begin('quarantined', T0 + 1);
    await counts.begin('counted', T0 + 500);
    assert.deepEqual(await counts.begin('other', T0 + 1499), deliver(1));
    assert.equal(counts.countingSize, 2, 'counted is still there 999 ms after its delivery');
    assert.deepEqual(await counts.begin('counted', T0 + 1500), deliver(1), '1000 ms after its delivery');
    await counts.committed();
    assert.deepEqual((await store.open()).map(({ key }) => key).sort(), ['counted', 'other', 'quarantined']);
    assert.equal((await counts.begin('quarantined', T0 + 100_000)).kind, 'quarantined-before');
  });

  it('drops on reopen the stored keys that expired or that lowered bounds leave out, on disk too', async () => {
    const store = new MemoryKeyedStore<DeliveryEntry>();
    const first = await DeliveryCounts.open(store, { maxDeliveries: 1, forgetAfterMs: 1000 }, T0);
    for (let i = 0; i < 10; i++) await first.begin(`k${i}`, T0 + i * 100);
    for (const key of ['q1', 'q2', 'q3']) {
      await first.begin(key, T0);
      await first.begin(key, T0 + 1);
    }
    await first.close();
    // At T0 + 1450, k0..k4 (delivered up to T0 + 400) have expired; bounds of 3 and 2 keep k7..k9, q2 and q3.
    const options = { maxDeliveries: 1, forgetAfterMs: 1000, maxEntries: 3, quarantineKeep: 2 };
    const second = await DeliveryCounts.open(store, options, T0 + 1450);
    assert.equal(second.countingSize, 3);
    await second.committed();
    assert.deepEqual((await store.open()).map(({ key }) => key).sort(), ['k7', 'k8', 'k9', 'q2', 'q3']);
    assert.equal((await second.begin('k9', T0 + 1450)).kind, 'quarantine');
    assert.deepEqual(await second.begin('k6', T0 + 1450), deliver(1));
  });
});

describe('delivery counts: message keys', () => {
  const message = {
    messageId: undefined,
    topic: 'plant/line-1',
    payload: Buffer.from('{"t":21}'),
    dup: false,
    retain: false,
  };

  it('keys a message by its id, and always counts its deliveries together', () => {
    const id = '0190a1b2-0000-7000-8000-000000000001';
    assert.deepEqual(messageKey({ ...message, messageId: id }), { key: `id:${id}`, fresh: false });
    const long = messageKey({ ...message, messageId: 'x'.repeat(10_000) });
    assert.match(long.key, /^id#[0-9a-f]{32}$/, 'a very long id is hashed: keys stay small');
  });

  it('keys a message without id by 128 bits of SHA-256 of topic, a zero byte and payload', () => {
    const expected = createHash('sha256').update('plant/line-1\u0000{"t":21}').digest('hex').slice(0, 32);
    assert.equal(messageKey(message).key, `hash:${expected}`);
    const keyOf = (topic: string, payload: string) =>
      messageKey({ ...message, topic, payload: Buffer.from(payload) }).key;
    assert.notEqual(keyOf('a', 'bc'), keyOf('ab', 'c'));
    assert.equal(messageKey({ ...message, messageId: '' }).key, `hash:${expected}`, 'an empty id is no id');
  });

  it('calls a delivery without id fresh only when neither DUP nor RETAIN says it was sent before', () => {
    assert.equal(messageKey(message).fresh, true);
    assert.equal(messageKey({ ...message, dup: true }).fresh, false);
    assert.equal(messageKey({ ...message, retain: true }).fresh, false);
  });
});

describe('delivery counts: durability', () => {
  it('writes the begins of one event-loop turn in one fsynced write', async () => {
    const store = new WatchedStore();
    const counts = await DeliveryCounts.open(store);
    const begins = [];
    for (let i = 0; i < 100; i++) begins.push(counts.begin(`k${i}`));
    assert.deepEqual(
      await Promise.all(begins),
      begins.map(() => deliver(1)),
    );
    assert.deepEqual(
      store.writes.map(({ put, del, sync }) => ({ put: put.length, del: del.length, sync })),
      [{ put: 100, del: 0, sync: true }],
    );
  });

  it('writes a completion without an fsync', async () => {
    const store = new WatchedStore();
    const counts = await DeliveryCounts.open(store);
    await counts.begin('a');
    counts.completed('a');
    await counts.committed();
    assert.deepEqual(store.writes[1], { put: [], del: ['a'], sync: false });
  });

  it('resolves completed once its delete is written, so the message is acknowledged only then', async () => {
    /** A memory store whose writes wait while `gate` is pending. */
    class GatedStore extends MemoryKeyedStore<DeliveryEntry> {
      gate = Promise.resolve();
      override async write(change: DeliveryStoreWrite): Promise<void> {
        await this.gate;
        return super.write(change);
      }
    }
    const store = new GatedStore();
    const counts = await DeliveryCounts.open(store);
    await counts.begin('a');
    let open!: () => void;
    store.gate = new Promise((resolve) => (open = resolve));
    let written = false;
    const completion = counts.completed('a').then(() => (written = true));
    await turns(10);
    assert.equal(written, false, 'completed resolved before its delete was written');
    open();
    await completion;
    assert.deepEqual(await store.open(), [], 'the delete is in the store');
    await counts.completed('not counted');
  });

  it('resolves begin only once its count is written', async () => {
    const store = new HeldStore();
    const counts = await DeliveryCounts.open(store);
    let verdict: DeliveryVerdict | undefined;
    const begun = counts.begin('a').then((value) => (verdict = value));
    await turns(10);
    assert.equal(verdict, undefined, 'begin resolved before its write');
    store.release();
    await begun;
    assert.deepEqual(verdict, deliver(1));
    assert.equal(store.size, 1);
  });

  it('rejects begin when the store cannot write, and that delivery does not count', async () => {
    const store = new WatchedStore();
    const counts = await DeliveryCounts.open(store, { maxDeliveries: 2 });
    assert.deepEqual(await counts.begin('a'), deliver(1));
    store.failure = new Error('disk full');
    await assert.rejects(counts.begin('a'), /disk full/);
    await assert.rejects(counts.begin('b'), /disk full/);
    store.failure = undefined;
    assert.deepEqual(await counts.begin('a'), deliver(2), 'the rejected delivery was not counted');
    assert.deepEqual(await counts.begin('b'), deliver(1));
    assert.deepEqual((await store.open()).map(({ key, entry }) => [key, entry.attempts]).sort(), [
      ['a', 2],
      ['b', 1],
    ]);
  });

  it('rejects a quarantine that cannot be written, and the resend waiting for it, and quarantines the next delivery', async () => {
    const store = new WatchedStore();
    const counts = await DeliveryCounts.open(store, { maxDeliveries: 1 }, T0);
    await counts.begin('a', T0);
    store.failure = new Error('disk full');
    const quarantine = counts.begin('a', T0 + 1);
    const resend = counts.begin('a', T0 + 1);
    await assert.rejects(quarantine, /disk full/);
    await assert.rejects(resend, /disk full/);
    assert.deepEqual(counts.quarantined(), []);
    store.failure = undefined;
    const verdict = await counts.begin('a', T0 + 2);
    assert.deepEqual(verdict, {
      kind: 'quarantine',
      entry: { key: 'a', attempts: 1, firstSeen: T0, lastSeen: T0 + 2, quarantinedAt: T0 + 2 },
    });
  });
});

describe('delivery counts across SIGKILL', () => {
  it('quarantines a key whose every delivery killed the process right after begin, with attempts, first time and error', async () => {
    const dir = temporaryDirectory('durable-mqtt-deliveries-');
    const before = Date.now();
    assert.deepEqual(await crashingDelivery(dir, 'id:poison', 3, 'Error: first crash'), deliver(1));
    const afterFirst = Date.now();
    assert.deepEqual(await crashingDelivery(dir, 'id:poison', 3), deliver(2));
    assert.deepEqual(await crashingDelivery(dir, 'id:poison', 3), deliver(3));
    const verdict = await crashingDelivery(dir, 'id:poison', 3);
    assert.equal(verdict.kind, 'quarantine');
    const { entry } = verdict as Extract<DeliveryVerdict, { kind: 'quarantine' }>;
    assert.equal(entry.attempts, 3);
    assert.equal(entry.lastError, 'Error: first crash');
    assert.ok(entry.firstSeen >= before && entry.firstSeen <= afterFirst, 'firstSeen is the first delivery');
    assert.equal((await crashingDelivery(dir, 'id:poison', 3)).kind, 'quarantined-before');
  });
});

describe('suspect gate: a message that may have crashed the flow enters it alone', () => {
  /** Records the order in which deliveries got into the flow. */
  function entering(gate: SuspectGate, order: string[], key: string, suspect: boolean) {
    return gate.enter(key, () => suspect).then(() => order.push(key));
  }

  it('waits for the flow to empty, holds later deliveries until it leaves, and lets suspects take turns', async () => {
    const gate = new SuspectGate();
    const order: string[] = [];
    await entering(gate, order, 'a', false);
    await entering(gate, order, 'b', false);
    const suspects = [entering(gate, order, 's1', true), entering(gate, order, 's2', true)];
    const later = entering(gate, order, 'c', false);
    await turns(3);
    assert.deepEqual(order, ['a', 'b'], 'the suspect waits for a and b to leave; c waits for the suspects');
    gate.leave('a');
    gate.leave('b');
    await turns(3);
    assert.deepEqual(order, ['a', 'b', 's1'], 's1 alone in the flow');
    gate.leave('s1');
    await turns(3);
    assert.deepEqual(order, ['a', 'b', 's1', 's2'], 's2 next, alone');
    gate.leave('s2');
    await Promise.all([...suspects, later]);
    assert.deepEqual(order, ['a', 'b', 's1', 's2', 'c'], 'everyone else once no suspect is left');
  });

  it('lets deliveries through side by side while there is no suspect', async () => {
    const gate = new SuspectGate();
    const order: string[] = [];
    await Promise.all(['a', 'b', 'c'].map((key) => entering(gate, order, key, false)));
    assert.deepEqual(order.sort(), ['a', 'b', 'c']);
  });

  it('lets copies of one key in one after the other, asking whether each is a suspect once the one before has left', async () => {
    const gate = new SuspectGate();
    const order: string[] = [];
    const asked: string[] = [];
    const copy = (name: string, suspect: boolean) =>
      gate
        .enter('k', () => {
          asked.push(name);
          return suspect;
        })
        .then(() => order.push(name));
    const copies = [copy('k1', false), copy('k2', false), copy('k3', true)];
    await entering(gate, order, 'other', false);
    await turns(3);
    assert.deepEqual(order, ['k1', 'other'], 'k2 and k3 wait for k1; another key does not');
    assert.deepEqual(asked, ['k1'], 'k2 is asked nothing while k1 is in the flow');
    gate.leave('k');
    await turns(3);
    assert.deepEqual(order, ['k1', 'other', 'k2']);
    assert.deepEqual(asked, ['k1', 'k2']);
    gate.leave('k');
    await turns(3);
    assert.deepEqual(asked, ['k1', 'k2', 'k3'], 'k3 is asked once k2 has left');
    assert.deepEqual(order, ['k1', 'other', 'k2'], 'k3, a suspect, waits for the flow to empty');
    gate.leave('other');
    await Promise.all(copies);
    assert.deepEqual(order, ['k1', 'other', 'k2', 'k3']);
  });
});

/** Node-RED's function node, for flows that fail (throw) or hold a message as a user's would. */
const functionNode = require('@node-red/nodes/core/function/10-function.js') as (RED: unknown) => void;

describe('quarantine in a flow: an in node with ack: complete and max deliveries', () => {
  before(() => helper.startServer());
  after(() => helper.stopServer());
  beforeEach(() => helper.settings({ userDir: temporaryDirectory('durable-mqtt-quarantine-') }));
  afterEach(() => helper.unload());

  it('never quarantines a message for its copies: copies that came together, while a suspect held the flow, each count after the one before', async () => {
    const port = await freePort();
    const suspectId = 'stuck-valve';
    const innocentId = 'open-door';
    // The suspect fails once, then holds the flow (alone) until the test releases it; the rest passes.
    // What the flow handled is listed in the global context (a helper node would never call done).
    const code =
      "const handled = () => global.set('handled', [...(global.get('handled') || []), msg.messageId]);" +
      'const seen = (context.get(msg.messageId) || 0) + 1; context.set(msg.messageId, seen);' +
      `if (msg.messageId === '${suspectId}') {` +
      "  if (seen === 1) throw new Error('valve stuck');" +
      "  global.set('release', () => { handled(); node.done(); }); return null; }" +
      'handled(); node.done();';
    await helper.load(
      [...allNodes, functionNode],
      [
        embeddedBrokerNode(port),
        brokerConfigNode({ id: 'cfg-gate', clientId: 'quarantine-gate', protocolVersion: 5 }),
        mqttInNode({
          id: 'in-gate',
          broker: 'cfg-gate',
          topic: 'door/#',
          ack: 'complete',
          maxDeliveries: 3,
          wires: [['fn-gate'], ['quarantined']],
        }),
        { id: 'fn-gate', type: 'function', func: code, outputs: 1, wires: [[]] },
        helperNode('quarantined'),
      ],
    );
    const quarantined = collect(helper.getNode('quarantined'));
    const fn = helper.getNode('fn-gate') as unknown as {
      context(): { get(key: string): unknown; global: { get(key: string): unknown } };
    };
    const global = fn.context().global;
    // A copy: the function's array is of its own sandbox.
    const handled = () => [...((global.get('handled') as string[] | undefined) ?? [])];
    await waitFor(
      () =>
        (helper.getNode('cfg-gate') as unknown as { connection: { connected: boolean } }).connection
          .connected,
      'the connection',
    );
    const publisher = await mqtt.connectAsync({ host: '127.0.0.1', port, protocolVersion: 5 });
    try {
      const publish = (messageId: string, payload: string) =>
        publisher.publishAsync('door/cmd', payload, {
          qos: 1,
          properties: { userProperties: { [MESSAGE_ID_PROPERTY]: messageId } },
        });
      await publish(suspectId, 'close');
      await waitFor(() => fn.context().get(suspectId) === 1, 'the first delivery, which fails');
      await publish(suspectId, 'close');
      await waitFor(() => typeof global.get('release') === 'function', 'the suspect alone in the flow');
      // A publisher sending again what it has no receipt for: four copies queue up behind the suspect.
      for (let copy = 0; copy < 4; copy++) await publish(innocentId, 'open');
      await delay(300);
      assert.equal(handled().length, 0, 'the copies wait for the suspect to leave');
      (global.get('release') as () => void)();
      await waitFor(
        () => handled().length + quarantined.length === 5,
        'the suspect, then the four copies',
        10_000,
      );
    } finally {
      await publisher.endAsync();
    }
    assert.deepEqual(handled(), [suspectId, innocentId, innocentId, innocentId, innocentId]);
    assert.deepEqual(quarantined, [], 'nothing quarantined: no copy of the door command ever failed');
  });
});
