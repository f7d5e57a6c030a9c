import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'mocha';
import mqtt from 'mqtt';
import { allNodes, collect, helper, translate } from './support/node-red.js';
import { Mosquitto, mosquittoBinary } from './support/mosquitto.js';
import { skipUnlessInstalled } from './support/services.js';
import { delay, waitFor } from './support/wait.js';
import { freePort } from './support/ports.js';
import { brokerConfigNode, embeddedBrokerNode, helperNode, mqttInNode } from './support/flows.js';

/** Messages published per test. */
const TOTAL = 200;

/**
 * Two broker configs (two client ids, as two Node-RED instances would have) and
 * an mqtt in node on each, both on `$share/g/…`: the broker (Mosquitto on `port`, or
 * the embedded broker) splits the messages between the two sessions.
 */
function splitFlow(
  port: number | 'embedded',
  protocolVersion: 4 | 5,
  filter: string,
): Record<string, unknown>[] {
  const flow: Record<string, unknown>[] = [];
  for (const member of ['a', 'b']) {
    flow.push(
      brokerConfigNode({
        id: `cfg-${member}`,
        ...(port === 'embedded' ? {} : { port }),
        protocolVersion,
        clientId: `durable-share-${protocolVersion}-${member}`,
        keepalive: 30,
      }),
      mqttInNode({
        id: `in-${member}`,
        broker: `cfg-${member}`,
        topic: filter,
        datatype: 'utf8',
        wires: [[`sink-${member}`]],
      }),
      helperNode(`sink-${member}`),
    );
  }
  return flow;
}

// The helper spies on every node's warn() through the prototype: the calls say which node made them.
interface WarnSpy {
  getCalls(): { thisValue: { id: string }; args: unknown[] }[];
}
function warningsOf(id: string): string[] {
  return (helper.getNode(id).warn as unknown as WarnSpy)
    .getCalls()
    .filter((call) => call.thisValue.id === id)
    .map((call) => String(call.args[0]));
}

interface SubscriptionInternals {
  connection: { brokerSubscriptions(): Map<string, number> };
}

/**
 * Once both nodes of splitFlow hold `filter`, publishes TOTAL messages to the broker on `port` and
 * checks that each reached one node, and both nodes some; resolves the publisher, for the caller to end.
 */
async function publishSplit(port: number, protocolVersion: 4 | 5, filter: string): Promise<mqtt.MqttClient> {
  const received = { a: collect(helper.getNode('sink-a')), b: collect(helper.getNode('sink-b')) };
  const subscribed = (member: string) =>
    (helper.getNode(`cfg-${member}`) as unknown as SubscriptionInternals).connection
      .brokerSubscriptions()
      .has(filter);
  await waitFor(() => subscribed('a') && subscribed('b'), 'both shared subscriptions granted');

  const publisher = await mqtt.connectAsync({ host: '127.0.0.1', port, protocolVersion, reconnectPeriod: 0 });
  for (let n = 1; n <= TOTAL; n++)
    await publisher.publishAsync(`shared/${n % 4}/value`, String(n), { qos: 1 });
  const count = () => received.a.length + received.b.length;
  await waitFor(() => count() >= TOTAL, `${TOTAL} messages between the two nodes`);
  await delay(300); // a copy too many would come now

  const numbers = (msgs: Record<string, unknown>[]) => msgs.map((msg) => Number(msg.payload));
  const a = numbers(received.a);
  const b = numbers(received.b);
  const inBoth = a.filter((n) => b.includes(n));
  console.log(`  ${filter}: node a ${a.length}, node b ${b.length}, in both ${inBoth.length}`);
  assert.equal(a.length + b.length, TOTAL, 'each message delivered once in all');
  assert.deepEqual(inBoth, [], 'no message reached both nodes');
  assert.deepEqual(
    [...a, ...b].sort((x, y) => x - y),
    Array.from({ length: TOTAL }, (_, i) => i + 1),
    'every message reached one node',
  );
  assert.ok(a.length > 0 && b.length > 0, 'the load is split between the two nodes');
  // The broker sends the real topic: the node's message carries it, not the $share filter.
  assert.match(String(received.a[0].topic), /^shared\/\d\/value$/);
  return publisher;
}

for (const protocolVersion of [4, 5] as const) {
  describe(`shared subscriptions through Mosquitto, MQTT ${protocolVersion === 5 ? '5' : '3.1.1'}`, () => {
    before(function () {
      skipUnlessInstalled(this, 'mosquitto', mosquittoBinary);
    });
    const broker = new Mosquitto();
    let publisher: mqtt.MqttClient | undefined;

    before(async () => {
      await broker.start();
      await helper.startServer();
    });
    after(async () => {
      await helper.stopServer();
      await broker.dispose();
    });
    afterEach(async () => {
      await publisher?.endAsync(true);
      publisher = undefined;
      await helper.unload();
    });

    for (const filter of ['$share/g/shared/#', '$share/g/shared/+/value']) {
      it(`delivers each message to exactly one of two mqtt in nodes on ${filter}`, async () => {
        await helper.load(allNodes, splitFlow(broker.port, protocolVersion, filter));
        publisher = await publishSplit(broker.port, protocolVersion, filter);
      });
    }

    if (protocolVersion === 4) {
      // A PUBLISH names no subscription: a connection holding both forms cannot tell its share from
      // the copy for the plain filter, and says so.
      it('warns when one MQTT 3.1.1 connection holds a shared filter and an overlapping plain one', async () => {
        const flow = splitFlow(broker.port, protocolVersion, '$share/g/shared/#');
        flow.push(mqttInNode({ id: 'in-plain', broker: 'cfg-a', topic: 'shared/+/value', datatype: 'utf8' }));
        await helper.load(allNodes, flow);
        const warnings = (member: string) => warningsOf(`cfg-${member}`);
        await waitFor(() => warnings('a').length > 0, 'a warning on the shared connection');
        assert.equal(
          warnings('a')[0],
          translate('durable-mqtt.errors.shared-overlap', {
            topic: 'shared/+/value',
            other: '$share/g/shared/#',
          }),
        );
        assert.deepEqual(warnings('b'), [], 'a connection with the shared filter alone says nothing');
      });
    }

    if (protocolVersion === 5) {
      it('keeps a plain subscription and a shared one of one connection apart by subscription identifier', async () => {
        const flow = splitFlow(broker.port, protocolVersion, '$share/g/shared/#');
        flow.push(
          mqttInNode({
            id: 'in-plain',
            broker: 'cfg-a',
            topic: 'shared/#',
            datatype: 'utf8',
            wires: [['sink-plain']],
          }),
          helperNode('sink-plain'),
        );
        await helper.load(allNodes, flow);
        const a = collect(helper.getNode('sink-a'));
        const b = collect(helper.getNode('sink-b'));
        const plain = collect(helper.getNode('sink-plain'));
        const connectionA = (helper.getNode('cfg-a') as unknown as SubscriptionInternals).connection;
        const connectionB = (helper.getNode('cfg-b') as unknown as SubscriptionInternals).connection;
        await waitFor(
          () =>
            connectionA.brokerSubscriptions().size === 2 &&
            connectionB.brokerSubscriptions().has('$share/g/shared/#'),
          'the three subscriptions granted',
        );
        publisher = await mqtt.connectAsync({
          host: '127.0.0.1',
          port: broker.port,
          protocolVersion,
          reconnectPeriod: 0,
        });
        for (let n = 1; n <= TOTAL; n++)
          await publisher.publishAsync(`shared/${n % 4}/value`, String(n), { qos: 1 });
        await waitFor(
          () => plain.length >= TOTAL && a.length + b.length >= TOTAL,
          'every message on the plain node and between the shared ones',
        );
        await delay(300);
        assert.equal(plain.length, TOTAL, 'the plain subscription gets every message once');
        assert.equal(a.length + b.length, TOTAL, 'the shared ones get each message once between them');
        assert.ok(a.length > 0 && b.length > 0, 'the load is split between the two shared nodes');
      });
    }
  });
}

for (const protocolVersion of [4, 5] as const) {
  // MQTT 3.1.1 broker configs reach the embedded broker through its core (core-session.ts); MQTT 5
  // ones as MQTT clients over an in-process stream.
  describe(`shared subscriptions on the embedded broker, broker configs on MQTT ${protocolVersion === 5 ? '5' : '3.1.1'}`, () => {
    let publisher: mqtt.MqttClient | undefined;
    before(() => helper.startServer());
    after(() => helper.stopServer());
    afterEach(async () => {
      await publisher?.endAsync(true);
      publisher = undefined;
      await helper.unload();
    });

    it('delivers each message to exactly one of two mqtt in nodes on $share/g/shared/#, and warns of nothing', async () => {
      const port = await freePort();
      await helper.load(allNodes, [
        embeddedBrokerNode(port),
        ...splitFlow('embedded', protocolVersion, '$share/g/shared/#'),
      ]);
      publisher = await publishSplit(port, protocolVersion, '$share/g/shared/#');
      assert.deepEqual([...warningsOf('cfg-a'), ...warningsOf('cfg-b')], []);
    });
  });
}
