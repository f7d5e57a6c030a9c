import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'mocha';
import mqtt, { type MqttClient } from 'mqtt';
import { EmbeddedBroker } from '../nodes/lib/broker/aedes/embedded-broker.js';
import { allNodes, helper, translate, watchStatus, type NodeStatus } from './support/node-red.js';
import { connectWhenListening } from './support/embedded-broker.js';
import { EMBEDDED_BROKER_ID, embeddedBrokerNode } from './support/flows.js';
import { RedisServer, redisBinary } from './support/redis.js';
import { freePort } from './support/ports.js';
import { skipUnlessInstalled } from './support/services.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { delay, waitFor, within } from './support/wait.js';
import { OPEN_BROKER } from './support/embedded-broker.js';

/** What each broker reported of Redis: reasons while unreachable, undefined when reachable. */
type RedisStates = (string | undefined)[];

describe('embedded brokers on Redis (in one process)', () => {
  before(function () {
    skipUnlessInstalled(this, 'redis-server', redisBinary);
  });
  const redis = new RedisServer();
  const brokers: EmbeddedBroker[] = [];
  const clients: MqttClient[] = [];
  const proxies: TcpProxy[] = [];
  const failures: unknown[] = [];
  const recordFailure = (error: unknown) => failures.push(error);

  before(async () => {
    await redis.start();
    process.on('unhandledRejection', recordFailure);
    process.on('uncaughtException', recordFailure);
  });
  after(async () => {
    process.off('unhandledRejection', recordFailure);
    process.off('uncaughtException', recordFailure);
    await redis.dispose();
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.endAsync(true)));
    await Promise.all(brokers.splice(0).map((broker) => broker.close()));
    await Promise.all(proxies.splice(0).map((proxy) => proxy.cut()));
    assert.deepEqual(failures, [], 'no unhandled rejection or exception');
  });

  /** A broker on its own TCP port, on Redis at `redisPort`, not started. */
  async function brokerOn(redisPort: number) {
    const broker = new EmbeddedBroker({
      ...OPEN_BROKER,
      port: await freePort(),
      bind: '127.0.0.1',
      maxOfflineMessages: 10_000,
      redis: { url: `redis://127.0.0.1:${redisPort}/0` },
    });
    brokers.push(broker);
    const states: RedisStates = [];
    broker.on('redis-state', (reason) => states.push(reason));
    return { broker, states };
  }

  async function startedBroker(redisPort = redis.port) {
    const { broker, states } = await brokerOn(redisPort);
    await broker.start();
    return { broker, states, port: broker.listeningAddress!.port };
  }

  async function connect(port: number, options: mqtt.IClientOptions = {}) {
    const client = await mqtt.connectAsync({
      host: '127.0.0.1',
      port,
      protocolVersion: 4,
      reconnectPeriod: 0,
      ...options,
    });
    clients.push(client);
    return client;
  }

  async function openProxy() {
    const proxy = new TcpProxy(await freePort(), redis.port);
    proxies.push(proxy);
    return proxy;
  }

  it('gives a session resuming under traffic its CONNACK first, then every message once', async () => {
    // Every step bounded and named: a step that never ends fails the test, not the run.
    const a = await within(startedBroker(), 'broker A to start', 20_000);
    const b = await within(startedBroker(), 'broker B to start', 20_000);
    const session = { clientId: 'resume-under-traffic', clean: false };
    const first = await within(connect(a.port, session), 'the first connection', 10_000);
    await within(first.subscribeAsync('busy/#', { qos: 1 }), 'the SUBACK', 10_000);
    await within(first.endAsync(), 'the first connection to end', 10_000);
    const publisher = await within(connect(a.port), 'the publisher to connect', 10_000);
    const TOTAL = 1500;
    let published = 0;
    const publishing = (async () => {
      while (published < TOTAL) await publisher.publishAsync('busy/n', String(++published), { qos: 1 });
    })();
    await waitFor(() => published >= 300, 'traffic before the session resumes');
    const seen: number[] = [];
    // The CONNACK must come: MQTT.js reads nothing further when a PUBLISH comes before it.
    const resumed = mqtt.connect({
      host: '127.0.0.1',
      port: b.port,
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 5000,
      ...session,
    });
    clients.push(resumed);
    resumed.on('message', (_topic, payload) => seen.push(Number(payload.toString())));
    await within(
      new Promise<void>((resolve, reject) => {
        resumed.once('connect', () => resolve());
        resumed.once('error', reject);
      }),
      'the CONNACK of the resumed session',
      30_000,
    );
    await within(publishing, `the publisher's ${TOTAL} PUBACKs`, 60_000);
    await waitFor(() => new Set(seen).size >= TOTAL, `all ${TOTAL} messages`, 20_000).catch(() => undefined);
    const missing = Array.from({ length: TOTAL }, (_, i) => i + 1).filter((n) => !seen.includes(n));
    assert.deepEqual(missing.slice(0, 10), [], `${missing.length} messages missing`);
    assert.equal(seen.length, TOTAL, 'each message once');
  });

  it('waits for Redis at start, reports it unreachable, and starts when Redis comes', async () => {
    const proxy = await openProxy();
    const { broker, states } = await brokerOn(proxy.port);
    let started = false;
    const starting = broker.start().then(() => (started = true));
    await waitFor(() => states.length > 0, 'Redis reported unreachable');
    assert.match(states[0] ?? '', /ECONNREFUSED/);
    await delay(500);
    assert.equal(started, false, 'the broker waits for Redis');
    await proxy.open();
    await starting;
    await waitFor(() => states.at(-1) === undefined, 'Redis reported reachable');
    const port = broker.listeningAddress!.port;
    const subscriber = await connect(port);
    const seen: string[] = [];
    subscriber.on('message', (_topic, payload) => seen.push(payload.toString()));
    await subscriber.subscribeAsync('late/start', { qos: 1 });
    await (await connect(port)).publishAsync('late/start', 'hello', { qos: 1 });
    await waitFor(() => seen.length === 1, 'the message');
  });

  it('rides out a Redis outage: reports it, keeps what is published meanwhile, delivers it after', async () => {
    const proxy = await openProxy();
    await proxy.open();
    const a = await startedBroker(proxy.port);
    const b = await startedBroker(proxy.port);
    const session = { clientId: 'outage-watcher', clean: false };
    const subscriber = await connect(b.port, { ...session, reconnectPeriod: 200 });
    const seen: string[] = [];
    subscriber.on('message', (_topic, payload) => seen.push(payload.toString()));
    await subscriber.subscribeAsync('outage/#', { qos: 1 });
    const publisher = await connect(a.port, { reconnectPeriod: 200 });
    await publisher.publishAsync('outage/n', 'before', { qos: 1 });
    await waitFor(() => seen.includes('before'), 'a message before the outage');

    await proxy.cut();
    await waitFor(
      () => [a, b].every(({ states }) => typeof states.at(-1) === 'string'),
      'both brokers reporting Redis unreachable',
    );
    // Aedes acknowledges a QoS 1 PUBLISH before passing it on: the broker holds it until Redis is back.
    await publisher.publishAsync('outage/n', 'during', { qos: 1 });
    await delay(500);
    assert.ok(!seen.includes('during'), 'nothing crosses while Redis is away');

    await proxy.open();
    await waitFor(
      () => [a, b].every(({ states }) => states.at(-1) === undefined),
      'both brokers reporting Redis reachable',
      10_000,
    );
    await waitFor(() => seen.includes('during'), 'the message published during the outage', 10_000);
    await publisher.publishAsync('outage/n', 'after', { qos: 1 });
    await waitFor(() => seen.includes('after'), 'a message after the outage');
  });

  it('closes at once while Redis is unreachable, whether still starting or running', async () => {
    const proxy = await openProxy();
    const { broker, states } = await brokerOn(proxy.port);
    const starting = broker.start();
    await waitFor(() => states.length > 0, 'Redis reported unreachable');
    const closingStarted = Date.now();
    broker.abandonStart();
    await assert.rejects(starting);
    await broker.close();

    await proxy.open();
    const running = await startedBroker(proxy.port);
    await proxy.cut();
    await waitFor(() => typeof running.states.at(-1) === 'string', 'Redis reported unreachable');
    await running.broker.close();
    assert.ok(Date.now() - closingStarted < 8000, `closed in ${Date.now() - closingStarted} ms`);
  });
});

describe('the embedded broker node on Redis', () => {
  before(function () {
    skipUnlessInstalled(this, 'redis-server', redisBinary);
  });
  const PASSWORD = 'node-secret';
  const redis = new RedisServer({ password: PASSWORD });
  let proxy: TcpProxy | undefined;

  before(async () => {
    await redis.start();
    await helper.startServer();
  });
  after(async () => {
    await helper.stopServer();
    await redis.dispose();
  });
  afterEach(async () => {
    await helper.unload();
    await proxy?.cut();
  });

  function watchBroker(): { statuses: NodeStatus[]; warnings: string[] } {
    const node = helper.getNode(EMBEDDED_BROKER_ID);
    const watched = { statuses: watchStatus(node), warnings: [] as string[] };
    node.on('call:warn', ((call: { args: [string] }) => watched.warnings.push(call.args[0])) as never);
    return watched;
  }

  it('shows Redis unreachable in red with the reason, warns once, and goes green when Redis is back', async () => {
    proxy = new TcpProxy(await freePort(), redis.port);
    const port = await freePort();
    const redisUrl = `redis://127.0.0.1:${proxy.port}/0`;
    await helper.load(allNodes, [embeddedBrokerNode(port, { persistence: 'redis', redisUrl })], {
      [EMBEDDED_BROKER_ID]: { redisPassword: PASSWORD },
    });
    const watched = watchBroker();
    await waitFor(() => watched.statuses.length > 0, 'a status');
    const down = watched.statuses[0];
    assert.equal(down.fill, 'red');
    assert.equal(down.shape, 'ring');
    assert.match(down.text ?? '', /^Redis unreachable: .*ECONNREFUSED/);
    assert.equal(watched.warnings.length, 1);
    assert.match(watched.warnings[0], /^Redis cannot be reached \(.*ECONNREFUSED.*\)/);

    await proxy.open();
    const reachable = translate('durable-mqtt.status.clients', { count: 0 });
    await waitFor(() => watched.statuses.at(-1)?.fill === 'green', 'a green status', 10_000);
    assert.equal(watched.statuses.at(-1)?.text, `127.0.0.1:${port} · ${reachable}`);
    const client = await connectWhenListening(port);
    await client.endAsync();

    await proxy.cut();
    await waitFor(() => watched.statuses.at(-1)?.fill === 'red', 'red again on an outage');
    await proxy.open();
    await waitFor(() => watched.statuses.at(-1)?.fill === 'green', 'green again', 10_000);
    assert.equal(watched.warnings.length, 2, 'one warning per outage');
  });

  it("uses the node's Redis password credential, and shows Redis' refusal when it is wrong", async () => {
    const port = await freePort();
    const node = embeddedBrokerNode(port, { persistence: 'redis', redisUrl: redis.url });
    await helper.load(allNodes, [node], { [EMBEDDED_BROKER_ID]: { redisPassword: 'wrong' } });
    const watched = watchBroker();
    await waitFor(() => watched.statuses.some((s) => s.fill === 'red'), 'a red status');
    assert.match(watched.statuses.find((s) => s.fill === 'red')?.text ?? '', /WRONGPASS|NOAUTH/);
    await helper.unload();

    await helper.load(allNodes, [node], { [EMBEDDED_BROKER_ID]: { redisPassword: PASSWORD } });
    const client = await connectWhenListening(port);
    await client.endAsync();
  });
});
