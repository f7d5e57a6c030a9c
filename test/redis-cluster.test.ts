import assert from 'node:assert/strict';
import { after, before, describe, it } from 'mocha';
import mqtt, { type MqttClient } from 'mqtt';
import { Redis } from 'ioredis';
import { NodeRedRig, NumberedSubscriber, waitFor } from './support/crash-rig.js';
import { RedisServer, redisBinary } from './support/redis.js';
import { freePort, isListening } from './support/ports.js';
import { skipUnlessInstalled } from './support/services.js';
import { delay, within } from './support/wait.js';
import { embeddedBrokerNode } from './support/flows.js';

const REDIS_PASSWORD = 'cluster-secret';

/** A Node-RED whose only job is an embedded broker on the shared Redis. */
function brokerFlow(port: number, redisUrl: string): unknown[] {
  return [
    { id: 'tab1', type: 'tab', label: 'broker' },
    embeddedBrokerNode(port, { id: 'broker1', z: 'tab1', persistence: 'redis', redisUrl }),
  ];
}

/** One member of the cluster: a Node-RED process and the port of its embedded broker. */
class Member {
  readonly rig: NodeRedRig;

  constructor(
    readonly port: number,
    redisUrl: string,
  ) {
    this.rig = new NodeRedRig(brokerFlow(port, redisUrl));
    // Node-RED reads credentials from flows_cred.json (plain JSON with credentialSecret false).
    this.rig.writeCredentials({ broker1: { redisPassword: REDIS_PASSWORD } });
  }

  async start(): Promise<void> {
    await this.rig.start();
    await waitFor(() => isListening(this.port), 'the embedded broker to listen', 30_000);
  }

  connect(options: mqtt.IClientOptions = {}): Promise<MqttClient> {
    return mqtt.connectAsync({
      host: '127.0.0.1',
      port: this.port,
      protocolVersion: 4,
      reconnectPeriod: 0,
      ...options,
    });
  }
}

/** What a client receives, as "topic payload" strings, in order. */
function record(client: MqttClient): string[] {
  const seen: string[] = [];
  client.on('message', (topic, payload) => seen.push(`${topic} ${payload.toString()}`));
  return seen;
}

function numbered(topic: string, from: number, to: number): string[] {
  return Array.from({ length: to - from + 1 }, (_, i) => `${topic} ${from + i}`);
}

describe('two Node-RED instances with embedded brokers on one Redis form one broker', () => {
  before(function () {
    skipUnlessInstalled(this, 'redis-server', redisBinary);
  });
  const redis = new RedisServer({ password: REDIS_PASSWORD });
  let a: Member;
  let b: Member;
  const clients: MqttClient[] = [];
  const track = async (connecting: Promise<MqttClient>) => {
    const client = await connecting;
    clients.push(client);
    return client;
  };

  before(async () => {
    await redis.start();
    a = new Member(await freePort(), redis.url);
    b = new Member(await freePort(), redis.url);
    await Promise.all([a.start(), b.start()]);
  });
  after(async () => {
    await Promise.all(clients.map((client) => client.endAsync(true)));
    for (const member of [a, b]) await member?.rig.stop().catch(() => member.rig.process?.kill());
    await redis.dispose();
  });

  for (const qos of [0, 1] as const) {
    it(`delivers QoS ${qos} messages published on either instance to subscribers on the other`, async () => {
      const onA = await track(a.connect());
      const onB = await track(b.connect());
      const seenOnA = record(onA);
      const seenOnB = record(onB);
      await onA.subscribeAsync(`across/${qos}/from-b`, { qos });
      await onB.subscribeAsync(`across/${qos}/from-a`, { qos });
      for (let n = 1; n <= 100; n++) {
        await onA.publishAsync(`across/${qos}/from-a`, String(n), { qos });
        await onB.publishAsync(`across/${qos}/from-b`, String(n), { qos });
      }
      await waitFor(() => seenOnA.length >= 100 && seenOnB.length >= 100, '100 messages each way');
      await delay(200);
      assert.deepEqual(seenOnB, numbered(`across/${qos}/from-a`, 1, 100));
      assert.deepEqual(seenOnA, numbered(`across/${qos}/from-b`, 1, 100));
    });
  }

  it('shows a retained message from both instances, and its removal too', async () => {
    const publisher = await track(a.connect());
    await publisher.publishAsync('retained/state', 'on', { qos: 1, retain: true });
    const seenLate: string[][] = [];
    for (const member of [a, b]) {
      const late = await track(member.connect());
      const seen = record(late);
      seenLate.push(seen);
      await late.subscribeAsync('retained/#', { qos: 1 });
      await waitFor(() => seen.length === 1, `the retained message on port ${member.port}`);
      assert.deepEqual(seen, ['retained/state on']);
    }
    const remover = await track(b.connect());
    await remover.publishAsync('retained/state', '', { qos: 1, retain: true });
    // The PUBACK comes before the broker passes the message on: once subscribers have it, it is stored.
    await waitFor(
      () => seenLate.every((seen) => seen.at(-1) === 'retained/state '),
      'the removal at the subscribers',
    );
    for (const member of [a, b]) {
      const later = await track(member.connect());
      const seen = record(later);
      await later.subscribeAsync('retained/#', { qos: 1 });
      await delay(300);
      assert.deepEqual(seen, [], `nothing retained any more on port ${member.port}`);
    }
  });

  it('resumes on B a persistent session opened on A, with the messages queued while it was away', async () => {
    const session = { clientId: 'cluster-roamer', clean: false };
    const first = await a.connect(session);
    await first.subscribeAsync('roam/#', { qos: 1 });
    await first.endAsync();
    const publisherA = await track(a.connect());
    const publisherB = await track(b.connect());
    for (let n = 1; n <= 100; n++) {
      await publisherA.publishAsync('roam/a', String(n), { qos: 1 });
      await publisherB.publishAsync('roam/b', String(n), { qos: 1 });
    }
    // Queued messages come right after the CONNACK: listen before connecting.
    const resumed = mqtt.connect({ host: '127.0.0.1', port: b.port, protocolVersion: 4, ...session });
    clients.push(resumed);
    const seen = record(resumed);
    await waitFor(() => seen.length >= 200, 'the 200 queued messages', 20_000).catch((error: Error) => {
      throw new Error(`${error.message}; ${seen.length} came: ${seen.slice(0, 5).join(', ')}…`);
    });
    await delay(300);
    const from = (topic: string) => seen.filter((line) => line.startsWith(`${topic} `));
    assert.equal(seen.length, 200, 'each queued message once');
    assert.deepEqual(from('roam/a'), numbered('roam/a', 1, 100));
    assert.deepEqual(from('roam/b'), numbered('roam/b', 1, 100));
    // The session is B's now: what is published next comes live, and goes on coming.
    await publisherA.publishAsync('roam/a', 'live', { qos: 1 });
    await waitFor(() => seen.at(-1) === 'roam/a live', 'a live message after the resume');
  });

  it("loses none of B's traffic when A is SIGKILLed, A's persistent client carries on at B, and B ends the MQTT 5 session A held", async () => {
    const TOTAL = 3000;
    // Connected to A when A dies: nobody sees it disconnect, its session must still expire (2 s).
    const expiring = await track(
      a.connect({
        clientId: 'kill-expiring',
        protocolVersion: 5,
        clean: false,
        properties: { sessionExpiryInterval: 2 },
      }),
    );
    await expiring.subscribeAsync('kill-expiring/#', { qos: 1 });
    const inspector = new Redis(redis.port, '127.0.0.1', { password: REDIS_PASSWORD });
    const sessionStored = async () => (await inspector.exists('client:kill-expiring')) === 1;
    assert.equal(await sessionStored(), true);
    const subscriberOnB = new NumberedSubscriber();
    await subscriberOnB.connect(b.port, 'kill/#', { clientId: 'kill-watcher-b', clean: false });
    const subscriberOnA = new NumberedSubscriber();
    await subscriberOnA.connect(a.port, 'kill/#', { clientId: 'kill-watcher-a', clean: false });
    const publisher = await track(b.connect());
    const accepted = new Set<number>();
    let dying: Promise<void> | undefined;
    for (let n = 1; n <= TOTAL; n++) {
      // Each wait is bounded: a lost PUBACK or a stuck step fails the test with its name, not a hung run.
      await within(
        publisher.publishAsync('kill/b', JSON.stringify({ n }), { qos: 1 }),
        `PUBACK ${n}`,
        20_000,
      );
      accepted.add(n);
      // B's traffic goes on while A dies, and after: the last third is published with A gone.
      if (n === TOTAL / 3) dying = a.rig.crash();
      if (n === (2 * TOTAL) / 3) await within(dying!, "A's exit", 30_000);
    }
    const onB = () => subscriberOnB.count('kill/b', accepted);
    await waitFor(() => onB().missing.length === 0, 'every message at the subscriber on B', 20_000).catch(
      () => undefined,
    );
    // A's client finds its session again at B, with what was published since A died.
    subscriberOnA.client?.end(true);
    await within(
      subscriberOnA.connect(b.port, 'kill/#', { clientId: 'kill-watcher-a', clean: false }),
      "A's client at B",
      20_000,
    );
    const onA = () => subscriberOnA.count('kill/b', accepted);
    await waitFor(() => onA().missing.length === 0, "every message at A's client, now on B", 20_000).catch(
      () => undefined,
    );
    console.log(`  subscriber on B: ${JSON.stringify({ ...onB(), missing: onB().missing.length })}`);
    console.log(
      `  A's subscriber, moved to B: ${JSON.stringify({ ...onA(), missing: onA().missing.length })}`,
    );
    await within(subscriberOnB.close(), 'the subscriber on B to close', 10_000);
    await within(subscriberOnA.close(), "A's client to close", 10_000);
    assert.deepEqual(onB().missing, [], 'messages missing at the subscriber on B');
    assert.equal(onB().duplicates, 0, 'duplicates at the subscriber on B');
    assert.deepEqual(onA().missing.slice(0, 10), [], "messages missing at A's client after its move");
    // B takes A's clients for disconnected once A's heartbeat key lapses (15 s), then times their expiry.
    try {
      await waitFor(async () => !(await sessionStored()), 'the session of the client A held to end', 30_000);
    } finally {
      inspector.disconnect();
    }
  });
});
