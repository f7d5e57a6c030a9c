import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'mocha';
import mqtt from 'mqtt';
import { allNodes, helper, translate, type RuntimeNode, watchStatus } from './support/node-red.js';
import { temporaryDirectory } from './support/node-red-process.js';
import { freePort } from './support/ports.js';
import { connectWhenListening } from './support/embedded-broker.js';
import { EMBEDDED_BROKER_ID, embeddedBrokerNode } from './support/flows.js';
import { delay, waitFor } from './support/wait.js';
import { MONITOR_ROUTES, type MonitorSnapshot } from '../nodes/lib/monitor-protocol.js';

const SLEEPY = { clientId: 'sleepy-sensor', clean: false };

interface Observed {
  statuses: { fill?: string; text?: string }[];
  warnings: string[];
}

function observeBroker(): Observed {
  const node = helper.getNode(EMBEDDED_BROKER_ID) as RuntimeNode;
  const observed: Observed = { statuses: watchStatus(node), warnings: [] };
  node.on('call:warn', ((call: { args: [string] }) => observed.warnings.push(call.args[0])) as never);
  return observed;
}

/** Subscribes a persistent session to q/# at QoS 1 and leaves. */
/** The messages the embedded broker holds for an away client, as the editor's monitor reads them. */
async function queuedFor(clientId: string): Promise<number | undefined> {
  const request = helper.request() as unknown as { get(path: string): Promise<{ body: MonitorSnapshot }> };
  const { body } = await request.get(MONITOR_ROUTES.snapshot);
  return body.brokers[0]?.offlineSessions.find((session) => session.clientId === clientId)?.queued;
}

async function subscribeAndLeave(port: number) {
  const sleepy = await connectWhenListening(port, SLEEPY);
  await sleepy.subscribeAsync('q/#', { qos: 1 });
  await sleepy.endAsync();
}

async function publishNumbers(port: number, from: number, to: number) {
  const publisher = await connectWhenListening(port);
  for (let n = from; n <= to; n++) await publisher.publishAsync('q/n', String(n), { qos: 1 });
  await publisher.endAsync();
}

/** Comes back with the persistent session and collects what the broker kept, until `expected` arrived. */
async function comeBack(port: number, expected: number): Promise<number[]> {
  const received: number[] = [];
  // Kept messages arrive right after the CONNACK: listen before connecting.
  const woken = mqtt.connect({ host: '127.0.0.1', port, protocolVersion: 4, reconnectPeriod: 0, ...SLEEPY });
  woken.on('message', (_topic, payload) => received.push(Number(payload.toString())));
  await waitFor(() => received.length >= expected, `${expected} queued messages`);
  await delay(200); // nothing more comes
  await woken.endAsync();
  return received;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

describe('embedded broker: offline queues bounded per client', () => {
  before(() => helper.startServer());
  after(() => helper.stopServer());
  afterEach(() => helper.unload());

  for (const persistence of ['memory', 'disk'] as const) {
    it(`keeps the newest maxOfflineMessages for a disconnected client and counts the oldest it drops (${persistence})`, async () => {
      if (persistence === 'disk') helper.settings({ userDir: temporaryDirectory('durable-mqtt-bound-') });
      const port = await freePort();
      await helper.load(allNodes, [embeddedBrokerNode(port, { persistence, maxOfflineMessages: 10 })]);
      const observed = observeBroker();
      await subscribeAndLeave(port);
      await publishNumbers(port, 1, 25);

      await waitFor(
        () => observed.statuses.at(-1)?.text?.endsWith('15 dropped from offline queues') === true,
        'the drop count in the status',
      );
      assert.equal(observed.statuses.at(-1)?.fill, 'yellow');
      // Rate-limited: the first drop is reported at once, the next ones together later.
      assert.equal(observed.warnings.length, 1);
      assert.equal(
        observed.warnings[0],
        translate('durable-mqtt.errors.offline-dropped', {
          client: 'sleepy-sensor',
          max: 10,
          count: 1,
          topic: 'q/n',
          total: 1,
        }),
      );
      assert.deepEqual(await comeBack(port, 10), range(16, 25));
    });
  }

  it('bounds a queue kept on disk across a restart, counting what was stored and dropping the oldest first', async () => {
    helper.settings({ userDir: temporaryDirectory('durable-mqtt-bound-restart-') });
    const port = await freePort();
    const flow = [embeddedBrokerNode(port, { persistence: 'disk', maxOfflineMessages: 10 })];
    await helper.load(allNodes, flow);
    await subscribeAndLeave(port);
    await publishNumbers(port, 1, 8);
    // On disk before the broker stops: the restarted broker counts what was stored.
    await waitFor(
      async () => (await queuedFor('sleepy-sensor')) === 8,
      'the 8 messages queued for the client',
    );
    await helper.unload();

    await helper.load(allNodes, flow);
    const observed = observeBroker();
    await publishNumbers(port, 9, 14);
    await waitFor(
      () => observed.statuses.at(-1)?.text?.endsWith('4 dropped from offline queues') === true,
      'the drop count in the status',
    );
    // Messages queued before the restart come first, as they were published.
    assert.deepEqual(await comeBack(port, 10), range(5, 14));
  });

  it('never cuts the queue of a connected client, and keeps everything with maxOfflineMessages 0', async () => {
    const port = await freePort();
    await helper.load(allNodes, [embeddedBrokerNode(port, { maxOfflineMessages: 0 })]);
    await subscribeAndLeave(port);
    await publishNumbers(port, 1, 30);
    assert.deepEqual(await comeBack(port, 30), range(1, 30));

    await helper.unload();
    await helper.load(allNodes, [embeddedBrokerNode(port, { maxOfflineMessages: 5 })]);
    const observed = observeBroker();
    const online = await connectWhenListening(port, SLEEPY);
    const received: number[] = [];
    online.on('message', (_topic, payload) => received.push(Number(payload.toString())));
    await online.subscribeAsync('q/#', { qos: 1 });
    await publishNumbers(port, 1, 50);
    await waitFor(() => received.length === 50, 'all 50 messages');
    await online.endAsync();
    assert.deepEqual(received, range(1, 50));
    assert.ok(!observed.statuses.some((s) => s.text?.includes('dropped')), 'nothing dropped');
  });
});
