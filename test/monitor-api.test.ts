import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import path from 'node:path';
import { afterEach, after, describe, it } from 'mocha';
import type mqtt from 'mqtt';
import {
  MONITOR_ROUTES,
  PREVIEW_BYTES,
  type MonitorSnapshot,
  type RetainedListing,
} from '../nodes/lib/monitor-protocol.js';
import type * as Registry from '../nodes/node-red/monitor/registry.js';
import { connectWhenListening } from './support/embedded-broker.js';
import {
  EMBEDDED_BROKER_ID,
  brokerConfigNode,
  embeddedBrokerNode,
  helperNode,
  mqttOutNode,
} from './support/flows.js';
import { allNodes, helper, watchLog } from './support/node-red.js';
import { temporaryDirectory } from './support/node-red-process.js';
import { freePort } from './support/ports.js';
import { delay, waitFor } from './support/wait.js';

const require = createRequire(__filename);
/** The registry the nodes Node-RED loads use: the compiled one, as a quarantine's in node would reach it. */
const { reportQuarantine } = require(
  path.resolve(__dirname, '..', 'dist', 'nodes', 'node-red', 'monitor', 'registry.js'),
) as typeof Registry;

interface Answer {
  status: number;
  body: unknown;
  text: string;
  headers: Record<string, string>;
}
interface Call extends Promise<Answer> {
  send(body: object): Promise<Answer>;
}
/** supertest on the helper's admin API: the verbs these tests use. */
function admin(): Record<'get' | 'post' | 'delete', (path: string) => Call> {
  return helper.request() as unknown as Record<'get' | 'post' | 'delete', (path: string) => Call>;
}

const route = (template: string, id: string) => template.replace(':id', encodeURIComponent(id));

/** waitFor at a pace the routes' rate limit allows (60 requests in 10 s per user). */
function poll(condition: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  return waitFor(async () => (await condition()) || (await delay(300), false), what, timeoutMs);
}

async function snapshot(): Promise<MonitorSnapshot> {
  const answer = await admin().get(MONITOR_ROUTES.snapshot);
  assert.equal(answer.status, 200);
  return answer.body as MonitorSnapshot;
}

describe('monitor API: the embedded broker', () => {
  const clients: mqtt.MqttClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.endAsync()));
    await helper.unload();
  });
  after(() => helper.stopServer());

  it('lists two connected MQTT.js clients with their subscriptions, and a persistent session that left with its queue', async () => {
    await helper.startServer();
    const port = await freePort();
    await helper.load(allNodes, [embeddedBrokerNode(port, { name: 'north' })]);
    const first = await connectWhenListening(port, { clientId: 'first', keepalive: 30 });
    clients.push(first);
    await first.subscribeAsync({ 'sensors/#': { qos: 1 }, 'alerts/+': { qos: 0 } });
    const second = await connectWhenListening(port, { clientId: 'second', protocolVersion: 5 });
    clients.push(second);
    await second.subscribeAsync('commands/second', { qos: 2 });
    const away = await connectWhenListening(port, { clientId: 'away', clean: false });
    await away.subscribeAsync('queue/#', { qos: 1 });
    await away.endAsync();
    await first.publishAsync('queue/1', 'one', { qos: 1 });
    await first.publishAsync('queue/2', 'two', { qos: 1 });

    let broker: MonitorSnapshot['brokers'][number] | undefined;
    await poll(async () => {
      broker = (await snapshot()).brokers.find((view) => view.id === EMBEDDED_BROKER_ID);
      return broker?.offlineSessions[0]?.queued === 2;
    }, 'the session that left, with two messages queued');
    assert.ok(broker);
    assert.equal(broker.name, 'north');
    assert.deepEqual(broker.listeners, [{ kind: 'tcp', port }]);
    const byId = new Map(broker.clients.map((client) => [client.clientId, client]));
    assert.deepEqual([...byId.keys()].sort(), ['first', 'second']);
    const firstView = byId.get('first')!;
    assert.deepEqual(
      firstView.subscriptions.sort((a, b) => a.filter.localeCompare(b.filter)),
      [
        { filter: 'alerts/+', qos: 0 },
        { filter: 'sensors/#', qos: 1 },
      ],
    );
    assert.equal(firstView.protocolVersion, 4);
    assert.equal(firstView.keepAlive, 30);
    assert.match(firstView.address ?? '', /^127\.0\.0\.1:\d+$/);
    assert.ok(firstView.connectedSince <= Date.now());
    const secondView = byId.get('second')!;
    assert.equal(secondView.protocolVersion, 5);
    assert.deepEqual(secondView.subscriptions, [{ filter: 'commands/second', qos: 2 }]);
    assert.deepEqual(broker.offlineSessions, [{ clientId: 'away', queued: 2 }]);
    assert.deepEqual(broker.rates, [], 'no rate while nobody watches');
  });

  it('lists retained messages matching a filter, previews capped at PREVIEW_BYTES, and deletes one', async () => {
    await helper.startServer();
    const port = await freePort();
    await helper.load(allNodes, [embeddedBrokerNode(port)]);
    const publisher = await connectWhenListening(port, { clientId: 'publisher' });
    clients.push(publisher);
    const large = 'x'.repeat(PREVIEW_BYTES * 3);
    await publisher.publishAsync('site/json', JSON.stringify({ on: true }), { retain: true, qos: 1 });
    await publisher.publishAsync('site/large', large, { retain: true, qos: 1 });
    await publisher.publishAsync('site/binary', Buffer.from([0, 1, 2, 255]), { retain: true, qos: 1 });
    await publisher.publishAsync('elsewhere/t', 'text', { retain: true, qos: 0 });
    const retainedRoute = route(MONITOR_ROUTES.retained, EMBEDDED_BROKER_ID);

    const listed = await admin().get(`${retainedRoute}?topic=${encodeURIComponent('site/#')}`);
    assert.equal(listed.status, 200);
    const listing = listed.body as RetainedListing;
    assert.equal(listing.truncated, false);
    const byTopic = new Map(listing.messages.map((message) => [message.topic, message]));
    assert.deepEqual([...byTopic.keys()].sort(), ['site/binary', 'site/json', 'site/large']);
    assert.deepEqual(byTopic.get('site/json')?.preview, {
      kind: 'json',
      text: '{"on":true}',
      truncated: false,
    });
    assert.deepEqual(byTopic.get('site/binary')?.preview, {
      kind: 'hex',
      text: '000102ff',
      truncated: false,
    });
    const largeView = byTopic.get('site/large')!;
    assert.equal(largeView.bytes, PREVIEW_BYTES * 3);
    assert.deepEqual(largeView.preview, { kind: 'text', text: 'x'.repeat(PREVIEW_BYTES), truncated: true });
    assert.equal((await snapshot()).brokers[0].retainedCount, 4);

    const deleted = await admin().delete(`${retainedRoute}?topic=site%2Fjson`);
    assert.equal(deleted.status, 204);
    const after = (await admin().get(retainedRoute)).body as RetainedListing;
    assert.deepEqual(after.messages.map((message) => message.topic).sort(), [
      'elsewhere/t',
      'site/binary',
      'site/large',
    ]);
    // Cleared from the store without a PUBLISH: a new subscriber gets nothing on that topic.
    const late = await connectWhenListening(port, { clientId: 'late' });
    clients.push(late);
    const got: string[] = [];
    late.on('message', (topic) => got.push(topic));
    await late.subscribeAsync('site/#', { qos: 1 });
    await waitFor(() => got.length === 2, 'the two retained messages left');
    assert.deepEqual(got.sort(), ['site/binary', 'site/large']);

    assert.equal((await admin().delete(`${retainedRoute}?topic=site%2Fjson`)).status, 404);
    assert.equal((await admin().delete(`${retainedRoute}?topic=site%2F%23`)).status, 400);
    assert.equal((await admin().get(route(MONITOR_ROUTES.retained, 'no-such-broker'))).status, 404);
    assert.equal((await admin().delete(`${route(MONITOR_ROUTES.retained, 'nope')}?topic=a`)).status, 404);
  });
});

describe('monitor API: outboxes and broker configs', () => {
  afterEach(() => helper.unload());
  after(() => helper.stopServer());

  it('shows an outbox growing while its broker is unreachable, the connection retrying with its last error; "retry now" reconnects at once and delivers', async function () {
    this.timeout(60_000);
    helper.settings({ userDir: temporaryDirectory('durable-mqtt-monitor-') });
    await helper.startServer();
    const port = await freePort();
    const config = brokerConfigNode({ id: 'config1', clientId: 'monitor-out', port, name: 'plant' });
    const out = mqttOutNode({
      id: 'out1',
      name: 'to plant',
      broker: 'config1',
      topic: 'q/t',
      qos: '1',
      persistence: 'queued',
    });
    await helper.load(allNodes, [config, out]);
    assert.equal((await admin().post(MONITOR_ROUTES.watch)).status, 204);
    for (const payload of ['m1', 'm2', 'm3']) helper.getNode('out1').receive({ payload });
    // Three failed attempts: the next waits at least 4 s (backoff 1 s doubling, half of it fixed).
    let view: MonitorSnapshot | undefined;
    await poll(
      async () => {
        view = await snapshot();
        const connection = view.connections.find((entry) => entry.id === 'config1');
        return connection?.state === 'disconnected' && connection.reconnects === 3;
      },
      'three reconnects refused',
      20_000,
    );
    const connection = view!.connections.find((entry) => entry.id === 'config1')!;
    assert.equal(connection.name, 'plant');
    assert.equal(connection.endpoint, `mqtt://127.0.0.1:${port}`);
    assert.match(connection.lastError ?? '', /ECONNREFUSED/);
    assert.ok(connection.since <= Date.now());
    const outbox = view!.outboxes.find((entry) => entry.id === 'out1')!;
    assert.deepEqual(
      { ...outbox, bytes: outbox.bytes > 0, oldestAgeSeconds: outbox.oldestAgeSeconds > 0 },
      {
        id: 'out1',
        name: 'to plant',
        connectionId: 'config1',
        persistence: 'queued',
        messages: 3,
        bytes: true,
        inFlight: 0,
        oldestAgeSeconds: true,
        deliveredPerSecond: 0,
        delivered: 0,
        dropped: 0,
        refused: 0,
      },
    );

    // The broker comes; the connection would wait out its backoff: "retry now" connects now.
    await helper.setFlows([config, out, embeddedBrokerNode(port)], 'nodes');
    await poll(async () => (await snapshot()).brokers.length === 1, 'the broker running');
    assert.equal((await admin().post(route(MONITOR_ROUTES.retryOutbox, 'out1'))).status, 204);
    const retried = (await snapshot()).connections[0];
    assert.equal(retried.reconnects, 4, 'tried again at once');
    await poll(async () => (await snapshot()).outboxes[0]?.delivered === 3, 'the three messages delivered');
    const delivered = await snapshot();
    assert.equal(delivered.outboxes[0].messages, 0);
    assert.equal(delivered.connections[0].state, 'connected');
    assert.equal((await admin().post(route(MONITOR_ROUTES.retryOutbox, 'nope'))).status, 404);
  });

  it('purges an outbox: every waiting message dropped with reason purged, counted, and logged with the count', async () => {
    helper.settings({ userDir: temporaryDirectory('durable-mqtt-monitor-') });
    await helper.startServer();
    const port = await freePort();
    const config = brokerConfigNode({ id: 'config1', clientId: 'monitor-purge', port });
    const out = mqttOutNode({
      id: 'out1',
      broker: 'config1',
      topic: 'q/t',
      qos: '1',
      persistence: 'queued',
      wires: [['receipts']],
    });
    await helper.load(allNodes, [config, out, helperNode('receipts')]);
    await admin().post(MONITOR_ROUTES.watch);
    const node = helper.getNode('out1');
    const warnings = watchLog(node, 'warn');
    for (const payload of ['m1', 'm2', 'm3', 'm4']) node.receive({ payload });
    await poll(async () => (await snapshot()).outboxes[0]?.messages === 4, 'four messages held');
    const purged = await admin().post(route(MONITOR_ROUTES.purgeOutbox, 'out1'));
    assert.equal(purged.status, 200);
    assert.deepEqual(purged.body, { purged: 4 });
    const after = (await snapshot()).outboxes[0];
    assert.equal(after.messages, 0);
    assert.equal(after.dropped, 4);
    await waitFor(() => warnings.some((text) => text.includes('purged')), 'the purge logged');
    assert.ok(
      warnings.some((text) => text.includes('an anonymous user') && text.includes('4')),
      warnings.join('\n'),
    );
    assert.equal((await admin().post(route(MONITOR_ROUTES.purgeOutbox, 'nope'))).status, 404);
  });
});

describe('monitor API: quarantines', () => {
  afterEach(() => helper.unload());
  after(() => helper.stopServer());

  it('shows a registered quarantine and passes release and discard to it; 404 for an unknown key or node', async () => {
    await helper.startServer();
    await helper.load(allNodes, [embeddedBrokerNode(0)]);
    const held = new Map([
      ['k1', { key: 'k1', topic: 'a/1', attempts: 3, firstSeen: 1, quarantinedAt: 2, lastError: 'boom' }],
      ['k2', { key: 'k2', attempts: 3, firstSeen: 3, quarantinedAt: 4 }],
    ]);
    const released: string[] = [];
    const unregister = reportQuarantine({
      id: 'in1',
      name: 'sensors',
      count: () => held.size,
      list: (limit) => [...held.values()].reverse().slice(0, limit),
      release: async (key) => held.delete(key) && released.push(key) > 0,
      discard: async (key) => held.delete(key),
    });
    try {
      const [view] = (await snapshot()).quarantines;
      assert.deepEqual(view, {
        id: 'in1',
        name: 'sensors',
        count: 2,
        messages: [...held.values()].reverse(),
      });
      const release = await admin().post(route(MONITOR_ROUTES.releaseQuarantined, 'in1')).send({ key: 'k1' });
      assert.equal(release.status, 204);
      assert.deepEqual(released, ['k1']);
      const discard = await admin().post(route(MONITOR_ROUTES.discardQuarantined, 'in1')).send({ key: 'k2' });
      assert.equal(discard.status, 204);
      assert.equal(held.size, 0);
      assert.equal(
        (await admin().post(route(MONITOR_ROUTES.discardQuarantined, 'in1')).send({ key: 'k2' })).status,
        404,
      );
      assert.equal(
        (await admin().post(route(MONITOR_ROUTES.releaseQuarantined, 'in1')).send({})).status,
        400,
      );
      assert.equal(
        (await admin().post(route(MONITOR_ROUTES.releaseQuarantined, 'in9')).send({ key: 'k' })).status,
        404,
      );
    } finally {
      unregister();
    }
  });
});
