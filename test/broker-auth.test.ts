import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'mocha';
import { networkInterfaces } from 'node:os';
import mqtt from 'mqtt';
import { hashPassword } from '../nodes/lib/broker/passwords.js';
import { connectWhenListening } from './support/embedded-broker.js';
import {
  EMBEDDED_BROKER_ID,
  brokerConfigNode,
  embeddedBrokerNode,
  helperNode,
  mqttInNode,
  mqttOutNode,
} from './support/flows.js';
import { allNodes, collect, helper, translate, type RuntimeNode, watchStatus } from './support/node-red.js';
import { freePort } from './support/ports.js';
import { skipOutsideCi } from './support/services.js';
import { delay, waitFor } from './support/wait.js';

interface UserSpec {
  username: string;
  password: string;
  publish: string[];
  subscribe: string[];
}

const USERS: UserSpec[] = [
  { username: 'admin', password: 'admin-secret', publish: ['#'], subscribe: ['#'] },
  {
    username: 'sensor',
    password: 'sensor-secret',
    publish: ['sensors/%c/#', 'users/%u/#'],
    subscribe: ['commands/%c/#', 'public/#'],
  },
];

let hashes: Record<string, string>;

/** The broker node with USERS, and the credentials holding their hashes. */
function securedBroker(port: number, extra: Record<string, unknown> = {}) {
  const node = embeddedBrokerNode(port, {
    accounts: USERS.map(({ username, publish, subscribe }) => ({ username, publish, subscribe })),
    allowAnonymous: false,
    ...extra,
  });
  return { node, credentials: { [EMBEDDED_BROKER_ID]: { passwords: JSON.stringify(hashes) } } };
}

function login(username: string, clientId = `${username}-client`): mqtt.IClientOptions {
  const user = USERS.find((candidate) => candidate.username === username)!;
  return { username, password: user.password, clientId };
}

/** The CONNACK return code the broker answers: 0 when it accepts (the client then leaves). */
async function connackCode(where: number | string, options: mqtt.IClientOptions): Promise<number> {
  try {
    const client = await connectWhenListening(where, options);
    await client.endAsync();
    return 0;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code !== 'number') throw error;
    return code;
  }
}

/** The SUBACK return codes (MQTT.js rejects a SUBACK holding 0x80: its packet is in the error). */
async function subackCodes(client: mqtt.MqttClient, subscriptions: mqtt.ISubscriptionMap): Promise<number[]> {
  try {
    return (await client.subscribeAsync(subscriptions)).map((grant) => grant.qos);
  } catch (error) {
    const granted = (error as { packet?: { granted?: number[] } }).packet?.granted;
    if (!granted) throw error;
    return granted;
  }
}

function warningsOf(node: RuntimeNode): string[] {
  const warnings: string[] = [];
  node.on('call:warn', ((call: { args: [string] }) => warnings.push(call.args[0])) as never);
  return warnings;
}

describe('embedded broker: users, passwords and topic rules', () => {
  before(async () => {
    hashes = Object.fromEntries(
      await Promise.all(
        USERS.map(async (user) => [user.username, await hashPassword(user.password)] as const),
      ),
    );
    await helper.startServer();
  });
  after(() => helper.stopServer());
  afterEach(() => helper.unload());

  it('accepts a user with the right password and answers CONNACK 4 to a wrong one or an unknown user, 5 to an anonymous client', async () => {
    const port = await freePort();
    const { node, credentials } = securedBroker(port);
    await helper.load(allNodes, [node], credentials);
    assert.equal(await connackCode(port, login('sensor')), 0);
    assert.equal(await connackCode(port, { ...login('sensor'), password: 'wrong' }), 4);
    assert.equal(await connackCode(port, { ...login('sensor'), username: 'nobody' }), 4);
    assert.equal(await connackCode(port, { username: 'sensor', clientId: 'no-password' }), 4);
    assert.equal(await connackCode(port, { clientId: 'anonymous' }), 5);
  });

  it('lets anonymous clients in when ticked, within their own topic rules', async () => {
    const port = await freePort();
    const { node, credentials } = securedBroker(port, {
      allowAnonymous: true,
      anonymousPublish: ['public/#'],
      anonymousSubscribe: ['public/#'],
    });
    await helper.load(allNodes, [node], credentials);
    const anonymous = await connectWhenListening(port, { clientId: 'visitor' });
    assert.deepEqual(
      await subackCodes(anonymous, { 'public/#': { qos: 1 }, 'private/#': { qos: 1 } }),
      [1, 128],
    );
    await anonymous.endAsync();
    assert.equal(await connackCode(port, { ...login('admin'), password: 'wrong' }), 4, 'users still checked');
  });

  it('holds anonymous clients to their rules on a broker without users too', async () => {
    const port = await freePort();
    await helper.load(allNodes, [
      embeddedBrokerNode(port, {
        allowAnonymous: true,
        anonymousPublish: 'public/#',
        anonymousSubscribe: '#',
      }),
    ]);
    const watcher = await connectWhenListening(port, { clientId: 'watcher' });
    const seen: string[] = [];
    watcher.on('message', (topic) => seen.push(topic));
    await watcher.subscribeAsync('#', { qos: 1 });
    // With no user, any credentials are let in, as anonymous.
    const visitor = await connectWhenListening(port, {
      clientId: 'visitor',
      username: 'whoever',
      password: 'x',
    });
    // A broker that closed the connection instead would leave these waiting for their PUBACK.
    const acknowledged = Promise.all([
      visitor.publishAsync('private/x', 'no', { qos: 1 }),
      visitor.publishAsync('public/x', 'yes', { qos: 1 }),
    ]);
    await Promise.race([acknowledged, delay(5000).then(() => assert.fail('no PUBACK within 5 s'))]);
    await waitFor(() => seen.includes('public/x'), 'the allowed publication');
    await delay(200);
    assert.deepEqual(seen, ['public/x']);
    await Promise.all([watcher.endAsync(), visitor.endAsync()]);
  });

  it('denies with !pattern in an ordered list: a SUBACK 0x80 for a filter wholly denied, the denied topics withheld from a wider one', async () => {
    const port = await freePort();
    const node = embeddedBrokerNode(port, {
      accounts: [{ username: 'admin', publish: ['#'], subscribe: ['#'] }],
      allowAnonymous: true,
      anonymousPublish: ['!secret/#', '#'],
      anonymousSubscribe: ['!secret/+', '+/+'],
    });
    const credentials = { [EMBEDDED_BROKER_ID]: { passwords: JSON.stringify({ admin: hashes.admin }) } };
    await helper.load(allNodes, [node], credentials);
    const visitor = await connectWhenListening(port, { clientId: 'visitor' });
    assert.deepEqual(await subackCodes(visitor, { 'secret/+': { qos: 1 }, '+/+': { qos: 1 } }), [128, 1]);
    assert.ok(visitor.connected, 'the connection stays open');
    const received: string[] = [];
    visitor.on('message', (topic) => received.push(topic));
    const admin = await connectWhenListening(port, login('admin'));
    await admin.publishAsync('secret/plans', 'x', { qos: 1 });
    await admin.publishAsync('open/news', 'x', { qos: 1 });
    await waitFor(() => received.includes('open/news'), 'the allowed topic');
    await delay(200);
    assert.deepEqual(received, ['open/news'], 'secret/plans withheld from +/+');
    const adminReceived: string[] = [];
    admin.on('message', (topic) => adminReceived.push(topic));
    await admin.subscribeAsync('#', { qos: 1 });
    await visitor.publishAsync('secret/leak', 'x', { qos: 1 });
    await visitor.publishAsync('open/post', 'x', { qos: 1 });
    await waitFor(() => adminReceived.includes('open/post'), 'the allowed publication');
    await delay(200);
    assert.ok(!adminReceived.includes('secret/leak'), 'the denied publication is dropped');
    await Promise.all([visitor.endAsync(), admin.endAsync()]);
  });

  it('withholds the denied topics from an in-process clean session too', async () => {
    const node = embeddedBrokerNode(0, {
      accounts: [{ username: 'admin', publish: ['#'], subscribe: ['#'] }],
      allowAnonymous: true,
      anonymousPublish: ['#'],
      anonymousSubscribe: ['!secret/+', '+/+'],
    });
    await helper.load(
      allNodes,
      [
        node,
        brokerConfigNode({ id: 'visitor-cfg', clientId: 'visitor' }),
        mqttInNode({ id: 'visitor-in', broker: 'visitor-cfg', topic: '+/+', wires: [['visitor-sink']] }),
        helperNode('visitor-sink'),
        mqttOutNode({ id: 'out', broker: 'visitor-cfg', qos: '1' }),
      ],
      { [EMBEDDED_BROKER_ID]: { passwords: JSON.stringify({ admin: hashes.admin }) } },
    );
    const received = collect(helper.getNode('visitor-sink'));
    await waitFor(
      () =>
        (helper.getNode('visitor-cfg') as unknown as { connection: { connected: boolean } }).connection
          .connected,
      'the in-process connection',
    );
    helper.getNode('out').receive({ topic: 'secret/plans', payload: 'x' });
    helper.getNode('out').receive({ topic: 'open/news', payload: 'x' });
    await waitFor(() => received.length === 1, 'the allowed topic');
    await delay(200);
    assert.deepEqual(
      received.map((msg) => msg.topic),
      ['open/news'],
    );
  });

  it('answers SUBACK 0x80 to a filter outside the rules, with %c and %u filled in, and keeps the connection', async () => {
    const port = await freePort();
    const { node, credentials } = securedBroker(port);
    await helper.load(allNodes, [node], credentials);
    const warnings = warningsOf(helper.getNode(EMBEDDED_BROKER_ID));
    const sensor = await connectWhenListening(port, login('sensor', 'sensor-7'));
    const codes = await subackCodes(sensor, {
      'commands/sensor-7/#': { qos: 1 },
      'commands/sensor-8/#': { qos: 1 },
      'commands/+/reboot': { qos: 0 },
      'public/news': { qos: 2 },
      '#': { qos: 0 },
    });
    assert.deepEqual(codes, [1, 128, 128, 2, 128]);
    assert.ok(sensor.connected, 'the connection stays open');
    await waitFor(() => warnings.length === 1, 'one warning for the refusals (rate-limited)');
    assert.equal(
      warnings[0],
      translate('durable-mqtt.errors.subscribe-not-allowed', {
        count: 1,
        client: 'sensor-7 (sensor)',
        filter: 'commands/sensor-8/#',
      }),
    );
    await sensor.endAsync();
  });

  for (const qos of [0, 1, 2] as const) {
    it(`acknowledges and drops a QoS ${qos} publication outside the rules, delivering the allowed ones`, async () => {
      const port = await freePort();
      const { node, credentials } = securedBroker(port);
      await helper.load(allNodes, [node], credentials);
      const warnings = warningsOf(helper.getNode(EMBEDDED_BROKER_ID));
      const admin = await connectWhenListening(port, login('admin'));
      const seen: string[] = [];
      admin.on('message', (topic) => seen.push(topic));
      await admin.subscribeAsync('#', { qos: 2 });
      const sensor = await connectWhenListening(port, login('sensor', 'sensor-7'));
      for (const topic of [
        'sensors/sensor-8/t',
        'sensors/sensor-7/t',
        'users/bob/x',
        'users/sensor/x',
        'other',
      ])
        await sensor.publishAsync(topic, 'reading', { qos });
      await waitFor(() => seen.length === 2, 'the allowed publications');
      await delay(200);
      assert.deepEqual(seen, ['sensors/sensor-7/t', 'users/sensor/x']);
      assert.ok(sensor.connected, 'the publisher stays connected');
      assert.equal(warnings.length, 1, 'one warning at once, the next refusals later together');
      assert.equal(
        warnings[0],
        translate('durable-mqtt.errors.publish-not-allowed', {
          count: 1,
          client: 'sensor-7 (sensor)',
          topic: 'sensors/sensor-8/t',
        }),
      );
      await Promise.all([sensor.endAsync(), admin.endAsync()]);
    });
  }

  it('does not publish a will whose topic is outside the rules', async () => {
    const port = await freePort();
    const { node, credentials } = securedBroker(port);
    await helper.load(allNodes, [node], credentials);
    const admin = await connectWhenListening(port, login('admin'));
    const seen: string[] = [];
    admin.on('message', (topic) => seen.push(topic));
    await admin.subscribeAsync('#', { qos: 1 });
    for (const willTopic of ['alarms/sensor-7', 'sensors/sensor-7/status']) {
      const sensor = await connectWhenListening(port, {
        ...login('sensor', 'sensor-7'),
        will: { topic: willTopic, payload: Buffer.from('gone'), qos: 1, retain: false },
      });
      // Dropping the connection without DISCONNECT makes the broker publish the will.
      (sensor as unknown as { stream: { destroy(): void } }).stream.destroy();
      sensor.end(true);
    }
    await waitFor(() => seen.length === 1, 'the allowed will');
    await delay(200);
    assert.deepEqual(seen, ['sensors/sensor-7/status']);
    await admin.endAsync();
  });

  for (const cleanSession of [true, false]) {
    const path = cleanSession ? 'through the link (clean session)' : 'over MQTT (persistent session)';
    it(`applies the rules to the in-process connections of broker configs too, ${path}`, async () => {
      const { node, credentials } = securedBroker(0);
      const inNode = (id: string, broker: string, topic: string) =>
        mqttInNode({ id, broker, topic, datatype: 'utf8', wires: [[`${id}-sink`]] });
      const flow = [
        node,
        brokerConfigNode({ id: 'sensor-cfg', clientId: 'sensor-7', cleanSession }),
        brokerConfigNode({ id: 'admin-cfg', clientId: 'admin-1', cleanSession }),
        mqttOutNode({ id: 'out', broker: 'sensor-cfg', qos: '1' }),
        inNode('sensor-in', 'sensor-cfg', '#'),
        inNode('admin-in', 'admin-cfg', 'sensors/#'),
        helperNode('sensor-in-sink'),
        helperNode('admin-in-sink'),
      ];
      await helper.load(allNodes, flow, {
        ...credentials,
        'sensor-cfg': { user: 'sensor', password: 'sensor-secret' },
        'admin-cfg': { user: 'admin', password: 'admin-secret' },
      });
      const sensorStatuses = watchStatus(helper.getNode('sensor-in'));
      await waitFor(
        () => sensorStatuses.some((status) => status.text === 'subscription refused: #'),
        'the refused subscription',
      );
      const adminConnection = (
        helper.getNode('admin-cfg') as unknown as {
          connection: { brokerSubscriptions(): Map<string, number> };
        }
      ).connection;
      await waitFor(() => adminConnection.brokerSubscriptions().size === 1, 'the admin subscription');
      const adminReceived = collect(helper.getNode('admin-in-sink'));
      const sensorReceived = collect(helper.getNode('sensor-in-sink'));
      helper.getNode('out').receive({ topic: 'sensors/sensor-8/t', payload: 'not mine' });
      helper.getNode('out').receive({ topic: 'sensors/sensor-7/t', payload: 'mine' });
      await waitFor(() => adminReceived.length === 1, 'the allowed publication');
      await delay(200);
      assert.deepEqual(
        adminReceived.map((msg) => [msg.topic, msg.payload]),
        [['sensors/sensor-7/t', 'mine']],
      );
      assert.deepEqual(sensorReceived, [], 'the refused # subscription receives nothing');
    });
  }
});

/** An address of this machine other than loopback, to connect from as another machine would; undefined when there is none. */
function networkAddress(): string | undefined {
  for (const addresses of Object.values(networkInterfaces()))
    for (const address of addresses ?? [])
      if (!address.internal && address.family === 'IPv4') return address.address;
  return undefined;
}

describe('embedded broker: anonymous clients from other machines', () => {
  let fromNetwork: string;
  before(async function () {
    const address = networkAddress();
    if (!address) {
      skipOutsideCi(this, 'this machine has no network interface other than loopback');
      throw new Error('no network interface other than loopback to connect from');
    }
    fromNetwork = address;
    await helper.startServer();
  });
  after(() => helper.stopServer());
  afterEach(() => helper.unload());

  /** The CONNACK code a client connecting to `host` gets (0: accepted), over MQTT 3.1.1 or 5. */
  const answer = (host: string, port: number, options: mqtt.IClientOptions = {}) =>
    connackCode(`mqtt://${host}:${port}`, options);

  it('lets them in from this machine only, unless ticked, and says so in the log (as Mosquitto 2 does)', async () => {
    const port = await freePort();
    await helper.load(allNodes, [embeddedBrokerNode(port, { bind: '0.0.0.0' })]);
    const broker = helper.getNode(EMBEDDED_BROKER_ID);
    const warnings = warningsOf(broker);
    await connectWhenListening(port).then((client) => client.endAsync());
    assert.equal(await answer('127.0.0.1', port), 0, 'from this machine');
    assert.equal(await answer(fromNetwork, port), 5, `from ${fromNetwork}`);
    assert.equal(await answer(fromNetwork, port, { protocolVersion: 5 }), 0x87, 'MQTT 5: Not authorized');
    await waitFor(() => warnings.length === 1, 'the warning');
    assert.match(warnings[0], /Also from the network/);
    assert.ok(warnings[0].includes(fromNetwork), warnings[0]);
  });

  it('lets them in from the network when ticked, with the broker shown open to the network in yellow', async () => {
    const port = await freePort();
    const flowNode = embeddedBrokerNode(port, { bind: '0.0.0.0', allowAnonymousFromNetwork: true });
    await helper.load(allNodes, [flowNode]);
    const broker = helper.getNode(EMBEDDED_BROKER_ID);
    const statuses = watchStatus(broker);
    await connectWhenListening(port).then((client) => client.endAsync());
    assert.equal(await answer(fromNetwork, port), 0);
    await waitFor(
      () =>
        statuses.some(
          (status) => status.fill === 'yellow' && /open to the network/.test(String(status.text)),
        ),
      'the yellow status',
    );
  });

  it('still lets users in from the network, and holds anonymous ones to this machine', async () => {
    const port = await freePort();
    const { node, credentials } = securedBroker(port, { bind: '0.0.0.0', allowAnonymous: true });
    await helper.load(allNodes, [node], credentials);
    await connectWhenListening(port, login('admin')).then((client) => client.endAsync());
    assert.equal(await answer(fromNetwork, port, login('admin')), 0, 'a user');
    assert.equal(await answer(fromNetwork, port), 5, 'an anonymous client');
    assert.equal(await answer('127.0.0.1', port), 0, 'an anonymous client of this machine');
  });
});
