import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import { MemoryKeyedStore } from '../nodes/lib/keyed-store.js';
import {
  KeptMessages,
  LevelKeptMessageStore,
  type KeptMessage,
} from '../nodes/lib/quarantine/kept-messages.js';
import { temporaryDirectory } from './support/node-red-process.js';

const message = (topic: string, bytes: number): KeptMessage => ({
  topic,
  payload: Buffer.alloc(bytes, 7),
  qos: 1,
  retain: false,
});

describe('kept quarantined messages', () => {
  it('gives back a message as it arrived, MQTT 5 properties and binary payload included, after a restart', async () => {
    const directory = temporaryDirectory('durable-mqtt-kept-');
    const original: KeptMessage = {
      topic: 'plant/valve/7',
      payload: Buffer.from([0, 255, 1, 254]),
      qos: 2,
      retain: true,
      properties: {
        correlationData: Buffer.from('job-42'),
        userProperties: { 'x-durable-mqtt-id': 'abc' },
        contentType: 'application/octet-stream',
      },
    };
    const kept = await KeptMessages.open(new LevelKeptMessageStore(directory), new Set());
    await kept.keep('id:abc', original);
    await kept.close();

    const reopened = await KeptMessages.open(new LevelKeptMessageStore(directory), new Set(['id:abc']));
    assert.deepEqual(reopened.get('id:abc'), original);
    assert.ok(Buffer.isBuffer(reopened.get('id:abc')?.properties?.correlationData));
    await reopened.destroy();
  });

  it('forgets, on opening, the messages whose key the delivery counts no longer hold quarantined', async () => {
    const store = new MemoryKeyedStore<KeptMessage>();
    const first = await KeptMessages.open(store, new Set());
    await first.keep('a', message('t/a', 10));
    await first.keep('b', message('t/b', 10));
    const second = await KeptMessages.open(store, new Set(['b']));
    assert.equal(second.has('a'), false);
    assert.equal(second.has('b'), true);
    assert.equal(store.size, 1, 'the stale message is deleted from the store too');
  });

  it('holds at most its bytes: the oldest message goes first, one larger than the bound is not kept', async () => {
    const store = new MemoryKeyedStore<KeptMessage>();
    const kept = await KeptMessages.open(store, new Set(), 100);
    await kept.keep('a', message('t/a', 40));
    await kept.keep('b', message('t/b', 40));
    await kept.keep('c', message('t/c', 40));
    assert.deepEqual(
      ['a', 'b', 'c'].map((key) => kept.has(key)),
      [false, true, true],
    );
    await kept.keep('huge', message('t/huge', 101));
    assert.equal(kept.has('huge'), false);
    assert.equal(store.size, 2);
    await kept.forget('b');
    assert.equal(kept.get('b'), undefined);
    assert.equal(store.size, 1);
  });
});
