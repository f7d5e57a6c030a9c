import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'mocha';
import { MemoryOutboxStore } from '../nodes/lib/outbox/memory-store.js';
import { Outbox } from '../nodes/lib/outbox/outbox.js';
import { OutboxSender } from '../nodes/lib/outbox/sender.js';
import { waitFor } from './support/wait.js';

/** What the sender uses of a connection; acknowledgments come back in a microtask, as fast as a broker could. */
class InstantBroker extends EventEmitter {
  connected = true;
  receiveMaximum: number | undefined = undefined;
  readonly received: number[] = [];
  publish(_topic: string, payload: Buffer, _options: object, callback: (error?: Error) => void) {
    if (!this.connected)
      return callback(Object.assign(new Error('not connected'), { code: 'not-connected' }));
    this.received.push(Number(payload.toString()));
    queueMicrotask(() => callback());
  }
  setConnected(connected: boolean) {
    this.connected = connected;
    this.emit('status', { state: connected ? 'connected' : 'disconnected' });
  }
}

/** An outbox in memory that no bound refuses. */
const unboundedOutbox = () =>
  Outbox.open(new MemoryOutboxStore(), { maxMessages: 1e6, maxBytes: 1e9, overflow: 'rejectNew' });

describe('outbox sender', () => {
  it('drains everything in order with at most the window in flight', async () => {
    const broker = new InstantBroker();
    const outbox = await unboundedOutbox();
    let maxInFlight = 0;
    const publish = broker.publish.bind(broker);
    broker.publish = (topic, payload, options, callback) => {
      maxInFlight = Math.max(maxInFlight, outbox.inFlightCount);
      publish(topic, payload, options, callback);
    };
    const sender = new OutboxSender(outbox, broker, 20);
    await Promise.all(
      Array.from({ length: 2000 }, (_, i) =>
        outbox.append({ topic: 't', payload: Buffer.from(String(i + 1)), qos: 1, retain: false }),
      ),
    );
    sender.kick();
    await waitFor(() => outbox.count === 0, 'an empty outbox');
    assert.deepEqual(
      broker.received,
      Array.from({ length: 2000 }, (_, i) => i + 1),
    );
    assert.ok(maxInFlight <= 20, `${maxInFlight} in flight`);
  });

  it('never stalls: keeps draining across many disconnects while messages keep coming', async () => {
    const broker = new InstantBroker();
    const outbox = await unboundedOutbox();
    new OutboxSender(outbox, broker, 20).kick();
    let n = 0;
    for (let cycle = 0; cycle < 50; cycle++) {
      for (let i = 0; i < 40; i++)
        void outbox.append({ topic: 't', payload: Buffer.from(String(++n)), qos: 1, retain: false });
      await new Promise((resolve) => setImmediate(resolve));
      broker.setConnected(false);
      await new Promise((resolve) => setImmediate(resolve));
      broker.setConnected(true);
    }
    await waitFor(() => outbox.count === 0, `an empty outbox (${outbox.count} left)`, 5000);
    assert.equal(new Set(broker.received).size, n);
  });

  it('waits a moment after a failed send while the connection still says it is up, and at once for a new status', async () => {
    const broker = new InstantBroker();
    const outbox = await unboundedOutbox();
    let failures = 0;
    const publish = broker.publish.bind(broker);
    let failing = true;
    broker.publish = (topic, payload, options, callback) => {
      if (!failing) return publish(topic, payload, options, callback);
      failures++;
      callback(Object.assign(new Error('closed under it'), { code: 'publish-failed' }));
    };
    const sender = new OutboxSender(outbox, broker, 20);
    await outbox.append({ topic: 't', payload: Buffer.from('1'), qos: 1, retain: false });
    // A timer fires: the failed send did not start a loop that holds the event loop.
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(failures, 1, 'one try, then a wait');
    assert.equal(outbox.count, 1, 'kept while it fails');
    await waitFor(() => failures === 2, 'a second try after the wait');
    failing = false;
    // A new connection status ends the wait.
    broker.setConnected(true);
    await waitFor(() => outbox.count === 0, 'an empty outbox', 200);
    assert.deepEqual(broker.received, [1]);
    await sender.stop();
  });
});
