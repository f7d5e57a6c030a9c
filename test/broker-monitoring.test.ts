import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'mocha';
import type mqtt from 'mqtt';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import type { Socket } from 'node:net';
import { connectWhenListening } from './support/embedded-broker.js';
import {
  EMBEDDED_BROKER_ID,
  dedupeNode,
  embeddedBrokerNode,
  helperNode,
  outboxFlow,
} from './support/flows.js';
import { allNodes, collect, helper } from './support/node-red.js';
import { NodeRedProcess, temporaryDirectory } from './support/node-red-process.js';
import { freePort } from './support/ports.js';
import { linkedUserDirectory } from './support/user-directory.js';
import { waitFor } from './support/wait.js';

const require = createRequire(__filename);

/** The latest payload of each topic a client got, as text. */
function latestByTopic(client: mqtt.MqttClient): Map<string, string> {
  const latest = new Map<string, string>();
  client.on('message', (topic, payload) => latest.set(topic, payload.toString()));
  return latest;
}

/** What a client's socket carried both ways so far. */
function socketBytes(client: mqtt.MqttClient): { read: number; written: number } {
  const socket = client.stream as Socket;
  return { read: socket.bytesRead, written: socket.bytesWritten };
}

interface Sample {
  labels: Record<string, string>;
  value: number;
}

/**
 * The exposition as a Prometheus text-format parser (parse-prometheus-text-format, a port of the
 * official Python client's parser) reads it, by metric name; values as numbers.
 */
function parseExposition(text: string): Map<string, { type: string; help: string; samples: Sample[] }> {
  assert.ok(text.endsWith('\n'), 'the exposition ends with a line feed');
  const metrics = new Map<string, { type: string; help: string; samples: Sample[] }>();
  for (const family of parsePrometheusTextFormat(text)) {
    const samples = family.metrics.map(({ labels, value }) => {
      const number = Number(value);
      assert.ok(!Number.isNaN(number), `a number: ${value}`);
      return { labels: labels ?? {}, value: number };
    });
    metrics.set(family.name, { type: family.type.toLowerCase(), help: family.help, samples });
  }
  return metrics;
}

/**
 * The controlled traffic both tests measure: a subscriber to `a/#`, a publisher of three messages
 * (one retained), both gone again with a DISCONNECT. Returns the bytes their sockets carried.
 */
async function controlledTraffic(port: number): Promise<{ received: number; sent: number }> {
  const subscriber = await connectWhenListening(port, { clientId: 'subscriber' });
  const delivered = latestByTopic(subscriber);
  await subscriber.subscribeAsync('a/#', { qos: 0 });
  const publisher = await connectWhenListening(port, { clientId: 'publisher' });
  await publisher.publishAsync('a/1', 'one', { qos: 0 });
  await publisher.publishAsync('a/2', 'two', { qos: 0, retain: true });
  await publisher.publishAsync('a/3', 'three', { qos: 0 });
  await waitFor(() => delivered.get('a/3') === 'three', 'the three messages delivered');
  await publisher.endAsync();
  await subscriber.endAsync();
  const bytes = [socketBytes(subscriber), socketBytes(publisher)];
  return {
    received: bytes.reduce((sum, b) => sum + b.written, 0),
    sent: bytes.reduce((sum, b) => sum + b.read, 0),
  };
}

describe('embedded broker monitoring: $SYS topics', () => {
  before(() => helper.startServer());
  after(() => helper.stopServer());
  afterEach(() => helper.unload());

  it("publishes Mosquitto's $SYS/broker/ counters, retained, to a client subscribed to $SYS/broker/#", async () => {
    const port = await freePort();
    await helper.load(allNodes, [embeddedBrokerNode(port, { sysTopics: true, sysInterval: 1 })]);
    const traffic = await controlledTraffic(port);
    // A '#' subscriber gets no $SYS topic [MQTT-4.7.2-1].
    const everything = await connectWhenListening(port, { clientId: 'everything' });
    const seenByHash = latestByTopic(everything);
    await everything.subscribeAsync('#');
    const watcher = await connectWhenListening(port, { clientId: 'watcher' });
    const sys = latestByTopic(watcher);
    await watcher.subscribeAsync('$SYS/broker/#');
    const watcherWritten = socketBytes(watcher).written;
    // CONNECT, 3 PUBLISH, DISCONNECT; CONNECT, SUBSCRIBE, DISCONNECT; CONNECT, SUBSCRIBE; CONNECT, SUBSCRIBE.
    await waitFor(() => sys.get('$SYS/broker/messages/received') === '12', 'the received packets counted');
    assert.equal(sys.get('$SYS/broker/publish/messages/received'), '3');
    assert.equal(
      sys.get('$SYS/broker/bytes/received'),
      String(traffic.received + socketBytes(everything).written + watcherWritten),
    );
    assert.equal(sys.get('$SYS/broker/clients/connected'), '2');
    assert.equal(sys.get('$SYS/broker/subscriptions/count'), '2');
    // The retained a/2.
    assert.equal(sys.get('$SYS/broker/retained messages/count'), '1');
    assert.match(sys.get('$SYS/broker/uptime') ?? '', /^\d+ seconds$/);
    assert.match(sys.get('$SYS/broker/version') ?? '', /^\d+\.\d+\.\d+.* \(aedes \d/);
    // Sent so far: CONNACK, SUBACK and 3 PUBLISH; CONNACK; CONNACK, SUBACK; then the watcher's own.
    assert.ok(Number(sys.get('$SYS/broker/publish/messages/sent')) >= 3);
    assert.ok(Number(sys.get('$SYS/broker/messages/sent')) >= 10);
    assert.ok(Number(sys.get('$SYS/broker/bytes/sent')) >= traffic.sent);
    // A client may not publish a $SYS topic: Aedes closes its connection, nothing is stored.
    const forger = await connectWhenListening(port, { clientId: 'forger' });
    const forgerClosed = new Promise<void>((resolve) => forger.once('close', () => resolve()));
    forger.publish('$SYS/broker/version', 'forged', { qos: 0, retain: true });
    await forgerClosed;
    // Retained: a client subscribing later gets the values at once.
    const late = await connectWhenListening(port, { clientId: 'late' });
    const lateSys = latestByTopic(late);
    await late.subscribeAsync('$SYS/broker/version');
    await waitFor(() => lateSys.has('$SYS/broker/version'), 'the retained version');
    assert.equal(lateSys.get('$SYS/broker/version'), sys.get('$SYS/broker/version'));
    assert.deepEqual(
      [...seenByHash.keys()].filter((topic) => topic.startsWith('$')),
      [],
    );
    await Promise.all([everything.endAsync(), watcher.endAsync(), late.endAsync()]);
  });

  it('publishes no $SYS/broker/ topic when the option is off, the default', async () => {
    const port = await freePort();
    await helper.load(allNodes, [embeddedBrokerNode(port)]);
    const client = await connectWhenListening(port, { clientId: 'watcher' });
    const seen = latestByTopic(client);
    await client.subscribeAsync(['$SYS/broker/#', 'sentinel']);
    await client.publishAsync('sentinel', 'after the retained ones');
    await waitFor(() => seen.has('sentinel'), 'the sentinel');
    assert.deepEqual([...seen.keys()], ['sentinel']);
    await client.endAsync();
  });
});

describe('embedded broker monitoring: the metrics endpoint', () => {
  afterEach(() => helper.unload());
  after(() => helper.stopServer());

  it('answers 404 unless settings.js turns the metrics on', async () => {
    await helper.startServer();
    await helper.load(allNodes, [embeddedBrokerNode(0)]);
    const response = await (
      helper.request() as unknown as { get(p: string): Promise<{ status: number }> }
    ).get('/durable-mqtt/metrics');
    assert.equal(response.status, 404);
    await helper.stopServer();
  });

  it('serves the broker counters in the Prometheus text format, labelled with the node id and name', async () => {
    helper.settings({ durableMqtt: { metrics: true } });
    await helper.startServer();
    const port = await freePort();
    const name = 'broker "north"\\1\nsecond line';
    await helper.load(allNodes, [embeddedBrokerNode(port, { name })]);
    const traffic = await controlledTraffic(port);
    const request = helper.request() as unknown as {
      get(p: string): Promise<{ status: number; text: string; headers: Record<string, string> }>;
    };
    const response = await request.get('/durable-mqtt/metrics');
    assert.equal(response.status, 200);
    assert.equal(response.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
    const metrics = parseExposition(response.text);
    const value = (metric: string) => {
      const entry = metrics.get(`durable_mqtt_broker_${metric}`);
      assert.ok(entry, metric);
      assert.equal(entry.samples.length, 1);
      assert.deepEqual(
        { node: entry.samples[0].labels.node, name: entry.samples[0].labels.name },
        { node: EMBEDDED_BROKER_ID, name },
      );
      return entry.samples[0].value;
    };
    assert.equal(metrics.get('durable_mqtt_broker_packets_received_total')?.type, 'counter');
    assert.equal(metrics.get('durable_mqtt_broker_clients_connected')?.type, 'gauge');
    // CONNECT, SUBSCRIBE, DISCONNECT; CONNECT, 3 PUBLISH, DISCONNECT. Back: CONNACK, SUBACK, 3 PUBLISH; CONNACK.
    assert.equal(value('packets_received_total'), 8);
    assert.equal(value('publish_received_total'), 3);
    assert.equal(value('packets_sent_total'), 6);
    assert.equal(value('publish_sent_total'), 3);
    assert.equal(value('bytes_received_total'), traffic.received);
    assert.equal(value('bytes_sent_total'), traffic.sent);
    assert.equal(value('clients_connected'), 0);
    assert.equal(value('subscriptions'), 0);
    assert.equal(value('retained_messages'), 1);
    assert.ok(value('uptime_seconds') >= 0);
    assert.equal(value('info'), 1);
  });
});

describe('out node monitoring: the outbox in the metrics endpoint', () => {
  afterEach(() => helper.unload());
  after(() => helper.stopServer());

  it("serves an out node's outbox depth, bytes, oldest message's age and delivered count", async () => {
    helper.settings({ durableMqtt: { metrics: true }, userDir: temporaryDirectory('durable-mqtt-metrics-') });
    await helper.startServer();
    const { broker, config, out, inNode, sinks } = outboxFlow('broker1', 'config1', 'metrics-out');
    // No broker yet: the three messages stay in the outbox.
    const outage = [config, out({ name: 'to "q"' }), inNode, ...sinks];
    await helper.load(allNodes, outage);
    const request = helper.request() as unknown as {
      get(p: string): Promise<{ status: number; text: string }>;
    };
    const scrape = async () => {
      const metrics = parseExposition((await request.get('/durable-mqtt/metrics')).text);
      const value = (name: string) => {
        const samples = metrics.get(`durable_mqtt_outbox_${name}`)?.samples ?? [];
        assert.deepEqual(
          samples.map((sample) => sample.labels),
          [{ node: 'out1', name: 'to "q"' }],
        );
        return samples[0].value;
      };
      return {
        messages: value('messages'),
        bytes: value('bytes'),
        oldestAge: value('oldest_age_seconds'),
        delivered: value('delivered_total'),
      };
    };
    await waitFor(
      async () => (await request.get('/durable-mqtt/metrics')).text.includes('outbox'),
      'the outbox',
    );
    for (const payload of ['m1', 'm2', 'm3']) helper.getNode('out1').receive({ payload });
    await waitFor(async () => (await scrape()).messages === 3, 'three messages held');
    const held = await scrape();
    assert.ok(held.bytes > 0);
    // Queued at least one poll of waitFor ago.
    assert.ok(held.oldestAge > 0);
    assert.equal(held.delivered, 0);
    await helper.setFlows([...outage, broker], 'nodes');
    await waitFor(async () => (await scrape()).delivered === 3, 'three delivered');
    assert.deepEqual(await scrape(), { messages: 0, bytes: 0, oldestAge: 0, delivered: 3 });
  });
});

describe('dedupe node monitoring: the seen-set in the metrics endpoint', () => {
  afterEach(() => helper.unload());
  after(() => helper.stopServer());

  it('serves the keys a dedupe node holds, the copies it let pass and the duplicates it caught', async () => {
    helper.settings({ durableMqtt: { metrics: true } });
    await helper.startServer();
    await helper.load(allNodes, [
      dedupeNode({ id: 'dedupe1', name: 'once', wires: [['passed'], ['caught']] }),
      helperNode('passed'),
      helperNode('caught'),
    ]);
    const caught = collect(helper.getNode('caught'));
    const dedupe = helper.getNode('dedupe1');
    for (const payload of ['x', 'x', 'y', 'x']) dedupe.receive({ topic: 'a', payload });
    await waitFor(() => caught.length === 2, 'two duplicates caught');
    const request = helper.request() as unknown as { get(p: string): Promise<{ text: string }> };
    const metrics = parseExposition((await request.get('/durable-mqtt/metrics')).text);
    const values = ['keys', 'passed_total', 'duplicates_total'].map((name) => {
      const samples = metrics.get(`durable_mqtt_dedupe_${name}`)?.samples ?? [];
      assert.deepEqual(
        samples.map((sample) => sample.labels),
        [{ node: 'dedupe1', name: 'once' }],
      );
      return samples[0].value;
    });
    assert.deepEqual(values, [2, 2, 2]);
  });
});

describe('embedded broker monitoring: the metrics endpoint behind adminAuth', () => {
  let nodeRed: NodeRedProcess | undefined;
  after(() => nodeRed?.kill());

  it('refuses a request without a token (401) and serves one with a token of a user who may read', async function () {
    this.timeout(120_000);
    const userDir = linkedUserDirectory(temporaryDirectory('durable-mqtt-metrics-'));
    writeFileSync(path.join(userDir, 'flows.json'), JSON.stringify([embeddedBrokerNode(0, { z: '' })]));
    writeFileSync(
      path.join(userDir, 'settings.js'),
      `module.exports = { uiHost: '127.0.0.1', flowFile: 'flows.json', credentialSecret: false,
        logging: { console: { level: 'warn', metrics: false, audit: false } },
        durableMqtt: { metrics: true },
        adminAuth: { type: 'credentials', users: [],
          tokens: (token) => Promise.resolve(token === 'scrape-token' ? { username: 'prometheus', permissions: 'read' } : null) } };\n`,
    );
    const port = await freePort();
    nodeRed = new NodeRedProcess(
      `http://127.0.0.1:${port}`,
      process.execPath,
      [
        require.resolve('node-red/red.js'),
        '--userDir',
        userDir,
        '--port',
        String(port),
        '--settings',
        path.join(userDir, 'settings.js'),
      ],
      { cwd: userDir },
    );
    await nodeRed.waitUntilServing('/auth/login', 60_000);
    const url = `${nodeRed.baseUrl}/durable-mqtt/metrics`;
    assert.equal((await fetch(url)).status, 401);
    assert.equal((await fetch(url, { headers: { authorization: 'Bearer wrong' } })).status, 401);
    let text = '';
    await waitFor(async () => {
      const response = await fetch(url, { headers: { authorization: 'Bearer scrape-token' } });
      assert.equal(response.status, 200);
      text = await response.text();
      return text.includes('durable_mqtt_broker_clients_connected');
    }, 'the broker in the metrics');
    assert.ok(parseExposition(text).has('durable_mqtt_broker_uptime_seconds'));
    await nodeRed.stop(15_000);
  });
});
