import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { afterEach, after, before, describe, it } from 'mocha';
import WebSocket from 'ws';
import type mqtt from 'mqtt';
import {
  MONITOR_ROUTES,
  MONITOR_TOPIC,
  PREVIEW_BYTES,
  SAMPLE_INTERVAL_MS,
  WATCH_LEASE_MS,
  type MonitorSnapshot,
  type RetainedListing,
} from '../nodes/lib/monitor-protocol.js';
import { hashPassword } from '../nodes/lib/broker/passwords.js';
import type { BrokerConnection } from '../nodes/lib/connection/broker-connection.js';
import type * as Registry from '../nodes/node-red/monitor/registry.js';
import { connectWhenListening } from './support/embedded-broker.js';
import {
  EMBEDDED_BROKER_ID,
  brokerConfigNode,
  embeddedBrokerNode,
  helperNode,
  mqttInNode,
  mqttOutNode,
} from './support/flows.js';
import { allNodes, helper, watchLog } from './support/node-red.js';
import { NodeRedProcess, temporaryDirectory } from './support/node-red-process.js';
import { RedisServer, redisBinary } from './support/redis.js';
import { skipUnlessInstalled } from './support/services.js';
import { freePort } from './support/ports.js';
import { linkedUserDirectory } from './support/user-directory.js';
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

describe('monitor API: offline sessions in every store', () => {
  const redis = new RedisServer();
  afterEach(() => helper.unload());
  after(async () => {
    await helper.stopServer();
    await redis.stop();
  });

  for (const store of ['disk', 'redis'] as const) {
    it(`lists a persistent session whose client left, with its queue, from the ${store} store`, async function () {
      if (store === 'redis') {
        skipUnlessInstalled(this, 'redis-server', redisBinary);
        await redis.start();
      }
      helper.settings({ userDir: temporaryDirectory('durable-mqtt-monitor-') });
      await helper.startServer();
      const port = await freePort();
      const persistence =
        store === 'disk' ? { persistence: 'disk' } : { persistence: 'redis', redisUrl: redis.url };
      await helper.load(allNodes, [embeddedBrokerNode(port, persistence)]);
      const away = await connectWhenListening(port, { clientId: `away/${store}:1`, clean: false });
      await away.subscribeAsync('queue/#', { qos: 1 });
      await away.endAsync();
      const publisher = await connectWhenListening(port, { clientId: 'publisher' });
      for (const n of [1, 2, 3]) await publisher.publishAsync(`queue/${n}`, 'x', { qos: 1 });
      await publisher.endAsync();
      await poll(
        async () => (await snapshot()).brokers[0]?.offlineSessions[0]?.queued === 3,
        'the session with three messages queued',
      );
      assert.deepEqual((await snapshot()).brokers[0].offlineSessions, [
        { clientId: `away/${store}:1`, queued: 3 },
      ]);
    });
  }
});

describe("monitor API: a broker config's subscriptions", () => {
  afterEach(() => helper.unload());
  after(() => helper.stopServer());

  it('lists each filter held once, with the QoS asked of the broker and the nodes that name themselves', async () => {
    await helper.startServer();
    await helper.load(allNodes, [
      embeddedBrokerNode(0),
      brokerConfigNode({ id: 'config1', clientId: 'monitor-subscriber' }),
      mqttInNode({ id: 'in1', broker: 'config1', topic: 'sensors/#', qos: 1 }),
    ]);
    const connection = helper.getNode('config1').connection as BrokerConnection;
    const subscriber = { nodeId: 'watcher', onMessage: () => undefined, onSubscribeFailure: () => undefined };
    connection.subscribe('sensors/#', 2, subscriber);
    connection.subscribe('alerts/+', 0, subscriber);
    await poll(async () => (await snapshot()).connections[0]?.state === 'connected', 'connected');
    const [view] = (await snapshot()).connections;
    assert.equal(view.reconnects, 0);
    assert.equal(view.lastError, undefined);
    assert.deepEqual(
      view.subscriptions.sort((a, b) => a.filter.localeCompare(b.filter)),
      [
        { filter: 'alerts/+', qos: 0, nodes: ['watcher'] },
        { filter: 'sensors/#', qos: 2, nodes: ['in1', 'watcher'] },
      ],
    );
    connection.unsubscribeAll(subscriber);
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
    // Listening, so the retry is not refused again.
    await (await connectWhenListening(port)).endAsync();
    // The open sidebar renews its watch every 5 s; the reconnects above may have outlasted the first one,
    // and the deliveries are counted only while watched.
    assert.equal((await admin().post(MONITOR_ROUTES.watch)).status, 204);
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

/** An admin API client of a spawned Node-RED, as a user with `token` (none: no Authorization header). */
function as(baseUrl: string, token?: string) {
  return async (method: string, routePath: string, body?: object) => {
    const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
    const sendsBody = body !== undefined && method !== 'GET';
    if (sendsBody) headers['content-type'] = 'application/json';
    const response = await fetch(baseUrl + routePath, {
      method,
      headers,
      body: sendsBody ? JSON.stringify(body) : undefined,
    });
    return { status: response.status, text: await response.text(), headers: response.headers };
  };
}

/** The editor's /comms socket, logged in with `token` and subscribed to `topic`: every message kept, raw. */
async function commsAs(baseUrl: string, token: string, topic: string) {
  const socket = new WebSocket(baseUrl.replace(/^http/, 'ws') + '/comms');
  const frames: string[] = [];
  const received: { topic: string; data: unknown }[] = [];
  await new Promise<void>((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  const loggedIn = new Promise<void>((resolve, reject) => {
    socket.on('message', (frame) => {
      const text = frame.toString();
      const parsed: unknown = JSON.parse(text);
      for (const entry of Array.isArray(parsed) ? parsed : [parsed]) {
        if (entry?.auth === 'ok') resolve();
        else if (entry?.auth === 'fail') reject(new Error('comms refused the token'));
        else if (entry?.topic === topic) {
          frames.push(text);
          received.push(entry);
        }
      }
    });
  });
  socket.send(JSON.stringify({ auth: token }));
  await loggedIn;
  socket.send(JSON.stringify({ subscribe: topic }));
  return { socket, frames, received };
}

describe('monitor API behind adminAuth (a Node-RED process of its own)', () => {
  const BROKER_PASSWORD = 'device-password-on-the-broker';
  const CONFIG_PASSWORD = 'config-password-of-the-connection';
  let nodeRed: NodeRedProcess | undefined;
  let hash = '';
  let configHash = '';
  let port = 0;
  const publishers: mqtt.MqttClient[] = [];

  before(async function () {
    this.timeout(120_000);
    hash = await hashPassword(BROKER_PASSWORD);
    configHash = await hashPassword(CONFIG_PASSWORD);
    port = await freePort();
    const userDir = linkedUserDirectory(temporaryDirectory('durable-mqtt-monitor-auth-'));
    const flow = [
      { id: 'tab1', type: 'tab', label: 'monitor' },
      embeddedBrokerNode(port, {
        z: 'tab1',
        accounts: ['device', 'plant'].map((username) => ({ username, publish: ['#'], subscribe: ['#'] })),
        allowAnonymous: false,
      }),
      brokerConfigNode({ id: 'config1', clientId: 'monitor-config' }),
      mqttOutNode({
        id: 'out1',
        z: 'tab1',
        broker: 'config1',
        topic: 'q/t',
        qos: '1',
        persistence: 'queued',
      }),
    ];
    writeFileSync(path.join(userDir, 'flows.json'), JSON.stringify(flow));
    writeFileSync(
      path.join(userDir, 'flows_cred.json'),
      JSON.stringify({
        [EMBEDDED_BROKER_ID]: { passwords: JSON.stringify({ device: hash, plant: configHash }) },
        config1: { user: 'plant', password: CONFIG_PASSWORD },
      }),
    );
    const tokens = {
      'admin-token': { username: 'admin', permissions: '*' },
      'reader-token': { username: 'reader', permissions: 'read' },
      'busy-token': { username: 'busy', permissions: 'read' },
    };
    writeFileSync(
      path.join(userDir, 'settings.js'),
      `const tokens = ${JSON.stringify(tokens)};
      module.exports = { uiHost: '127.0.0.1', flowFile: 'flows.json', credentialSecret: false,
        logging: { console: { level: 'warn', metrics: false, audit: false } },
        adminAuth: { type: 'credentials', users: [], tokens: (token) => Promise.resolve(tokens[token] || null) } };\n`,
    );
    const httpPort = await freePort();
    nodeRed = new NodeRedProcess(
      `http://127.0.0.1:${httpPort}`,
      process.execPath,
      [require.resolve('node-red/red.js'), '--userDir', userDir, '--port', String(httpPort)],
      { cwd: userDir },
    );
    await nodeRed.waitUntilServing('/auth/login', 60_000);
    const publisher = await connectWhenListening(port, {
      clientId: 'device-1',
      username: 'device',
      password: BROKER_PASSWORD,
    });
    publishers.push(publisher);
    await publisher.publishAsync('site/state', JSON.stringify({ on: true }), { retain: true, qos: 1 });
  });

  after(async () => {
    await Promise.all(publishers.splice(0).map((client) => client.endAsync()));
    await nodeRed?.stop(15_000).catch(() => nodeRed?.kill());
  });

  const routes = () => {
    const retained = route(MONITOR_ROUTES.retained, EMBEDDED_BROKER_ID);
    return {
      views: [
        ['POST', MONITOR_ROUTES.watch],
        ['GET', MONITOR_ROUTES.snapshot],
        ['GET', retained],
      ] as const,
      actions: [
        ['DELETE', `${retained}?topic=site%2Fstate`],
        ['POST', route(MONITOR_ROUTES.retryOutbox, 'out1')],
        ['POST', route(MONITOR_ROUTES.purgeOutbox, 'out1')],
        ['POST', route(MONITOR_ROUTES.releaseQuarantined, 'in1')],
        ['POST', route(MONITOR_ROUTES.discardQuarantined, 'in1')],
      ] as const,
    };
  };

  it('samples only while watched: no snapshot before a watch, one a second while watched, none after the lease', async function () {
    this.timeout(60_000);
    const comms = await commsAs(nodeRed!.baseUrl, 'admin-token', MONITOR_TOPIC);
    try {
      // First of these tests: nobody has watched this Node-RED yet.
      await delay(3 * SAMPLE_INTERVAL_MS);
      assert.equal(comms.received.length, 0, 'no snapshot before a watch');
      assert.equal((await as(nodeRed!.baseUrl, 'reader-token')('POST', MONITOR_ROUTES.watch)).status, 204);
      await waitFor(() => comms.received.length >= 3, 'three snapshots while watched');
      const snapshot = comms.received[2].data as MonitorSnapshot;
      assert.equal(snapshot.brokers[0].id, EMBEDDED_BROKER_ID);
      assert.ok(snapshot.brokers[0].rates.length >= 1, 'rates sampled while watched');
      assert.equal(snapshot.outboxes[0].id, 'out1');
      for (const frame of comms.frames)
        for (const secret of [BROKER_PASSWORD, CONFIG_PASSWORD, hash, configHash])
          assert.ok(!frame.includes(secret), 'a snapshot holds a secret');
      await delay(WATCH_LEASE_MS);
      const afterLease = comms.received.length;
      await delay(3 * SAMPLE_INTERVAL_MS);
      assert.equal(comms.received.length, afterLease, 'no snapshot once the lease ended');
    } finally {
      comms.socket.close();
    }
  });

  it('refuses every route without a token (401), and the actions to a user who may only read (403)', async () => {
    const { views, actions } = routes();
    const anonymous = as(nodeRed!.baseUrl);
    const wrong = as(nodeRed!.baseUrl, 'no-such-token');
    for (const [method, routePath] of [...views, ...actions]) {
      assert.equal((await anonymous(method, routePath, { key: 'k' })).status, 401, `${method} ${routePath}`);
      assert.equal((await wrong(method, routePath, { key: 'k' })).status, 401, `${method} ${routePath}`);
    }
    const reader = as(nodeRed!.baseUrl, 'reader-token');
    for (const [method, routePath] of views)
      assert.ok([200, 204].includes((await reader(method, routePath)).status), `${method} ${routePath}`);
    for (const [method, routePath] of actions)
      assert.equal((await reader(method, routePath, { key: 'k' })).status, 403, `${method} ${routePath}`);
    // Nothing was done: the retained message is still there.
    const listing = JSON.parse((await reader('GET', routes().views[2][1])).text) as RetainedListing;
    assert.deepEqual(
      listing.messages.map((message) => message.topic),
      ['site/state'],
    );
  });

  it('shows payload previews to a user who may write only, and never a password or a password hash', async () => {
    const retained = routes().views[2][1];
    const reader = as(nodeRed!.baseUrl, 'reader-token');
    const writer = as(nodeRed!.baseUrl, 'admin-token');
    const readerListing = await reader('GET', retained);
    const writerListing = await writer('GET', retained);
    const [readerView] = (JSON.parse(readerListing.text) as RetainedListing).messages;
    const [writerView] = (JSON.parse(writerListing.text) as RetainedListing).messages;
    assert.deepEqual(readerView, { topic: 'site/state', qos: 1, bytes: 11 });
    assert.deepEqual(writerView.preview, { kind: 'json', text: '{"on":true}', truncated: false });
    let snapshotText = '';
    await poll(async () => {
      snapshotText = (await writer('GET', MONITOR_ROUTES.snapshot)).text;
      const view = JSON.parse(snapshotText) as MonitorSnapshot;
      return view.connections[0]?.state === 'connected' && view.brokers[0]?.clients.length === 2;
    }, 'the broker config and the device connected');
    const snapshot = JSON.parse(snapshotText) as MonitorSnapshot;
    assert.equal(snapshot.connections[0].endpoint, `embedded:${EMBEDDED_BROKER_ID}`);
    assert.deepEqual(snapshot.brokers[0].clients.map((client) => client.user).sort(), ['device', 'plant']);
    // Each hash whole, and its salt and key alone (base64, as the hash holds them).
    const secrets = [
      BROKER_PASSWORD,
      CONFIG_PASSWORD,
      ...[hash, configHash].flatMap((h) => [h, ...h.split('$').slice(4)]),
    ];
    for (const text of [readerListing.text, writerListing.text, snapshotText]) {
      for (const secret of secrets) assert.ok(!text.includes(secret), `an answer holds a secret: ${text}`);
    }
  });

  it('answers 429 with Retry-After past the rate limit, for that user only', async () => {
    const busy = as(nodeRed!.baseUrl, 'busy-token');
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 61; i++) {
      const answer = await busy('GET', MONITOR_ROUTES.snapshot);
      statuses.push(answer.status);
      if (answer.status === 429) retryAfter = answer.headers.get('retry-after');
    }
    assert.deepEqual(statuses.slice(0, 60), new Array(60).fill(200));
    assert.equal(statuses[60], 429);
    assert.match(retryAfter ?? '', /^[1-9]\d*$/);
    assert.equal((await as(nodeRed!.baseUrl, 'reader-token')('GET', MONITOR_ROUTES.snapshot)).status, 200);
  });
});
