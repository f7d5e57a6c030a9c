import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, afterEach, before, describe, it } from 'mocha';
import type { MqttClient, Packet } from 'mqtt';
import { allNodes, collect, completionObservers, helper, watchLog, watchStatus } from './support/node-red.js';
import { Mosquitto, mosquittoBinary, observeBroker, type Observed } from './support/mosquitto.js';
import { makeCertificates } from './support/certificates.js';
import { skipUnlessInstalled } from './support/services.js';
import { brokerConfigNode, helperNode, mqttInNode, mqttOutNode } from './support/flows.js';
import { delay, waitFor } from './support/wait.js';
import { freePort } from './support/ports.js';
import { noSubscriptionIdentifiersProxy } from './support/no-subscription-identifiers-proxy.js';

const require = createRequire(__filename);
const tlsConfigNode = require('@node-red/nodes/core/network/05-tls.js');
const { embeddedBrokers } = require('../dist/nodes/lib/broker/registry.js');

const CONFIG = 'c0000000000000002';
interface ConnectionInternals {
  connected: boolean;
  brokerSubscriptions(): Map<string, number>;
  listenerCount(event: string): number;
  transport: { client: MqttClient };
}

function connectionOf(): ConnectionInternals {
  return (helper.getNode(CONFIG) as unknown as { connection: ConnectionInternals }).connection;
}
/** SUBSCRIBE packets the connection sends from now on, as lists of filters. */
function watchSubscribes(): string[][] {
  const sent: string[][] = [];
  connectionOf().transport.client.on('packetsend', (packet: Packet) => {
    if (packet.cmd === 'subscribe') sent.push(packet.subscriptions.map((s) => s.topic));
  });
  return sent;
}

for (const protocolVersion of [4, 5] as const) {
  const version = protocolVersion === 5 ? 'MQTT 5' : 'MQTT 3.1.1';

  describe(`interoperability with Mosquitto over ${version}`, () => {
    before(function () {
      skipUnlessInstalled(this, 'mosquitto', mosquittoBinary);
    });
    let broker: Mosquitto;
    let observer: MqttClient | undefined;

    function configNode(extra: Record<string, unknown> = {}) {
      return brokerConfigNode({
        id: CONFIG,
        port: broker.port,
        protocolVersion,
        clientId: `durable-test-${protocolVersion}`,
        keepalive: 30,
        ...extra,
      });
    }
    const outNode = (id: string, extra: Record<string, unknown> = {}) =>
      mqttOutNode({ id, broker: CONFIG, ...extra });
    const inNode = (id: string, topic: string, extra: Record<string, unknown> = {}) =>
      mqttInNode({ id, broker: CONFIG, topic, qos: 2, wires: [[`${id}-sink`]], ...extra });
    const sink = (id: string) => helperNode(`${id}-sink`);
    const connected = () => waitFor(() => connectionOf().connected, 'connection to Mosquitto');
    async function observe(filter: string): Promise<Observed[]> {
      const observing = await observeBroker(broker.port, filter, protocolVersion);
      observer = observing.client;
      return observing.seen;
    }

    before(async () => {
      broker = new Mosquitto();
      await broker.start();
      await helper.startServer();
    });
    after(async () => {
      await helper.stopServer();
      await broker?.dispose();
    });
    afterEach(async () => {
      await observer?.endAsync(true);
      observer = undefined;
      await helper.unload();
    });

    for (const qos of [0, 1, 2]) {
      it(`round-trips QoS ${qos} through Mosquitto`, async () => {
        const flow = [
          configNode(),
          outNode('out1', { topic: `rt/${qos}`, qos: String(qos) }),
          inNode('in1', 'rt/#'),
          sink('in1'),
          ...completionObservers('out1'),
        ];
        await helper.load(allNodes, flow);
        const received = collect(helper.getNode('in1-sink'));
        const completed = collect(helper.getNode('completed'));
        await connected();
        helper.getNode('out1').receive({ payload: [1, 'two'] });
        await waitFor(() => received.length === 1 && completed.length === 1, 'delivery and completion');
        assert.deepEqual(received[0].payload, [1, 'two']);
        assert.equal(received[0].qos, qos);
      });
    }

    it('with a node that acknowledges once its flow has finished, passes QoS 1 and 2 on once to every node, the other node without waiting', async () => {
      const flow = [
        configNode(),
        outNode('out1'),
        // The helper node calls no done(): the held acknowledgments go at the ack timeout.
        inNode('in1', 'ack/#', { ack: 'complete', ackTimeout: 2 }),
        sink('in1'),
        inNode('in2', 'ack/+'),
        sink('in2'),
      ];
      await helper.load(allNodes, flow);
      await connected();
      // MQTT 5: Mosquitto sends one copy per matching subscription, each with its own PUBREC.
      const pubrecs: number[] = [];
      const copies = protocolVersion === 5 ? 2 : 1;
      connectionOf().transport.client.on('packetsend', (packet: Packet) => {
        if (packet.cmd === 'pubrec') pubrecs.push(Date.now());
      });
      const arrivals = (id: string) => {
        const times: { payload: unknown; at: number }[] = [];
        helper
          .getNode(id)
          .on('input', ((msg: { payload: unknown }) =>
            times.push({ payload: msg.payload, at: Date.now() })) as never);
        return times;
      };
      const holder = arrivals('in1-sink');
      const other = arrivals('in2-sink');
      helper.getNode('out1').receive({ topic: 'ack/one', payload: 'qos 1', qos: 1 });
      helper.getNode('out1').receive({ topic: 'ack/two', payload: 'qos 2', qos: 2 });
      await waitFor(() => holder.length === 2 && other.length === 2, 'both messages at both nodes');
      await waitFor(() => pubrecs.length === copies, 'the held PUBREC', 10_000);
      // The holder's PUBREC waited for its ack timeout (2 s); the other node did not wait for it.
      const held = pubrecs[copies - 1];
      const holderCopy = holder.find((m) => m.payload === 'qos 2')!;
      const otherCopy = other.find((m) => m.payload === 'qos 2')!;
      assert.ok(
        held - holderCopy.at >= 1500,
        `PUBREC ${held - holderCopy.at} ms after the holder had the message`,
      );
      assert.ok(otherCopy.at < held, 'the other node got the QoS 2 message before the held PUBREC');
      await delay(300);
      assert.deepEqual(holder.map((m) => m.payload).sort(), ['qos 1', 'qos 2']);
      assert.deepEqual(other.map((m) => m.payload).sort(), ['qos 1', 'qos 2']);
    });

    if (protocolVersion === 5) {
      it('round-trips MQTT 5 properties: response topic, correlation data, content type, user properties, expiry', async () => {
        const flow = [configNode(), outNode('out1', { topic: 'props' }), inNode('in1', 'props'), sink('in1')];
        await helper.load(allNodes, flow);
        const received = collect(helper.getNode('in1-sink'));
        await connected();
        helper.getNode('out1').receive({
          payload: 'with properties',
          qos: 1,
          responseTopic: 'reply/here',
          correlationData: Buffer.from('corr-1'),
          contentType: 'text/plain',
          userProperties: { site: 'lyon', tags: ['a', 'b'] },
          messageExpiryInterval: 120,
        });
        await waitFor(() => received.length === 1, 'delivery');
        const msg = received[0];
        assert.equal(msg.responseTopic, 'reply/here');
        assert.deepEqual(msg.correlationData, Buffer.from('corr-1'));
        assert.equal(msg.contentType, 'text/plain');
        assert.deepEqual({ ...(msg.userProperties as object) }, { site: 'lyon', tags: ['a', 'b'] });
        assert.ok(
          typeof msg.messageExpiryInterval === 'number' &&
            msg.messageExpiryInterval > 100 &&
            msg.messageExpiryInterval <= 120,
        );
      });

      it('sends the message id as the user property msg-id, next to the user properties of the msg, and the in node sets msg.messageId', async () => {
        const flow = [
          configNode(),
          outNode('out1', { topic: 'ids', qos: '1', messageId: true }),
          inNode('in1', 'ids'),
          sink('in1'),
          ...completionObservers('out1'),
        ];
        await helper.load(allNodes, flow);
        const received = collect(helper.getNode('in1-sink'));
        const completed = collect(helper.getNode('completed'));
        await connected();
        const seen = await observe('ids');
        helper.getNode('out1').receive({ payload: 'a', userProperties: { site: 'lyon' } });
        await waitFor(() => received.length === 1 && completed.length === 1 && seen.length === 1, 'delivery');
        const id = completed[0].messageId;
        assert.match(String(id), /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-/);
        assert.deepEqual({ ...seen[0].packet.properties?.userProperties }, { site: 'lyon', 'msg-id': id });
        assert.equal(seen[0].payload, 'a', 'no envelope on MQTT 5');
        assert.equal(received[0].messageId, id);
        assert.equal(received[0].payload, 'a');
      });
    }

    it('publishes the birth message on connect, the close message on a clean close, the will when the connection dies', async () => {
      const seen = await observe('nr/status');
      const lifecycle = {
        birthTopic: 'nr/status',
        birthPayload: 'online',
        birthQos: '1',
        closeTopic: 'nr/status',
        closePayload: 'offline',
        closeQos: '1',
        willTopic: 'nr/status',
        willPayload: 'lost',
        willQos: '1',
      };
      await helper.load(allNodes, [configNode(lifecycle), inNode('in1', 'x'), sink('in1')]);
      await waitFor(() => seen.some((m) => m.payload === 'online'), 'the birth message');
      // Until its PUBACK arrives the birth message may rightly be sent again after a reconnect (QoS 1).
      await waitFor(
        () => Object.keys(connectionOf().transport.client.outgoing).length === 0,
        'the birth PUBACK',
      );
      // The socket dies without DISCONNECT: Mosquitto publishes the will; the connection comes back and says birth again.
      connectionOf().transport.client.stream.destroy();
      await waitFor(() => seen.some((m) => m.payload === 'lost'), 'the will message');
      await waitFor(
        () => seen.filter((m) => m.payload === 'online').length === 2,
        'a second birth after reconnecting',
        15_000,
      );
      await helper.unload();
      await waitFor(() => seen.some((m) => m.payload === 'offline'), 'the close message');
      assert.deepEqual(
        seen.map((m) => m.payload),
        ['online', 'lost', 'online', 'offline'],
      );
    });

    it('reconnects after Mosquitto restarts, restoring each subscription with one SUBSCRIBE per filter', async () => {
      const flow = [
        configNode(),
        outNode('out1', { topic: 'r/1' }),
        inNode('a', 'r/#'),
        inNode('b', 'r/#'),
        inNode('c', 'r/+'),
        sink('a'),
        sink('b'),
        sink('c'),
      ];
      await helper.load(allNodes, flow);
      const received = ['a', 'b', 'c'].map((id) => collect(helper.getNode(`${id}-sink`)));
      await connected();
      const statuses = watchStatus(helper.getNode('a'));
      const subscribes = watchSubscribes();
      await broker.restart();
      await waitFor(() => statuses.some((s) => s.fill === 'red'), 'a red status while Mosquitto is down');
      await waitFor(() => connectionOf().connected, 'reconnection', 20_000);
      await waitFor(() => subscribes.length > 0, 'the SUBSCRIBE');
      await delay(300);
      assert.deepEqual(subscribes.flat().sort(), ['r/#', 'r/+'], 'each filter subscribed once');
      helper.getNode('out1').receive({ payload: 'after restart', qos: 1 });
      await waitFor(() => received.every((r) => r.length >= 1), 'delivery to all three nodes');
      await delay(300);
      assert.deepEqual(
        received.map((r) => r.length),
        [1, 1, 1],
        'one copy per node',
      );
      assert.equal(statuses.at(-1)?.fill, 'green');
    });

    it('gives one copy to a node whose own filters overlap, and one to each node sharing a filter', async () => {
      const flow = [
        configNode(),
        outNode('out1', { topic: 'o/1' }),
        inNode('dyn', '', { topicType: 'dynamic', inputs: 1 }),
        inNode('other', 'o/#'),
        sink('dyn'),
        sink('other'),
      ];
      await helper.load(allNodes, flow);
      const received = ['dyn', 'other'].map((id) => collect(helper.getNode(`${id}-sink`)));
      await connected();
      helper.getNode('dyn').receive({ action: 'subscribe', topic: ['o/#', 'o/+', 'o/1'] });
      await waitFor(() => connectionOf().brokerSubscriptions().size === 3, 'three filters at the broker');
      await delay(200); // SUBACKs
      for (const payload of ['first', 'second']) helper.getNode('out1').receive({ payload, qos: 1 });
      await waitFor(() => received.every((r) => r.length >= 2), 'both messages at both nodes');
      await delay(300);
      for (const messages of received)
        assert.deepEqual(
          messages.map((m) => m.payload),
          ['first', 'second'],
        );
    });

    if (protocolVersion === 5)
      it('works with a broker that has no subscription identifiers (as AWS IoT Core): subscribes without them, delivers by topic, warns of a shared filter that overlaps', async () => {
        const { proxy, seen } = noSubscriptionIdentifiersProxy(await freePort(), broker.port);
        await proxy.open();
        try {
          await helper.load(allNodes, [
            configNode({ port: proxy.port }),
            outNode('out1', { topic: 'aws/temp', qos: '1' }),
            inNode('all', 'aws/#'),
            inNode('temp', 'aws/temp'),
            inNode('share', '$share/g/aws/+'),
            sink('all'),
            sink('temp'),
            sink('share'),
          ]);
          const warnings = watchLog(helper.getNode(CONFIG), 'warn');
          const received = ['all', 'temp', 'share'].map((id) => collect(helper.getNode(`${id}-sink`)));
          await connected();
          await waitFor(() => seen.passed.length > 0, 'the SUBSCRIBE at the broker');
          await delay(200); // SUBACKs
          for (const payload of ['first', 'second']) helper.getNode('out1').receive({ payload });
          await waitFor(() => received.every((r) => r.length >= 2), 'both messages at every node');
          await delay(300);
          assert.equal(seen.refused, 0, 'no SUBSCRIBE with an identifier');
          assert.ok(connectionOf().connected, 'still connected');
          const filters = seen.passed.flatMap((packet) => packet.subscriptions.map((s) => s.topic));
          assert.deepEqual(filters.sort(), ['$share/g/aws/+', 'aws/#', 'aws/temp']);
          // Mosquitto sends one copy per matching filter, and without identifiers nothing tells them apart:
          // each node gets every copy (here three of each message: duplicates, never a loss), as the README says.
          for (const messages of received)
            assert.deepEqual([...new Set(messages.map((m) => m.payload))], ['first', 'second']);
          assert.ok(
            warnings.some((text) => String(text).includes('$share/g/aws/+')),
            `warned of the shared filter: ${JSON.stringify(warnings)}`,
          );
        } finally {
          await proxy.cut();
        }
      });

    it('leaks no listener and subscribes nothing twice across redeploys of an in node', async () => {
      const flow = (name: string) => [
        configNode(),
        outNode('out1', { topic: 'd/1' }),
        inNode('in1', 'd/#', { name }),
        sink('in1'),
      ];
      await helper.load(allNodes, flow('first'));
      await connected();
      const statusListeners = connectionOf().listenerCount('status');
      const subscribes = watchSubscribes();
      for (let deploy = 0; deploy < 5; deploy++) await helper.setFlows(flow(`deploy ${deploy}`), 'nodes');
      await waitFor(() => subscribes.length === 5, 'one SUBSCRIBE per redeploy');
      assert.equal(connectionOf().listenerCount('status'), statusListeners);
      assert.deepEqual([...connectionOf().brokerSubscriptions().keys()], ['d/#']);
      const received = collect(helper.getNode('in1-sink'));
      helper.getNode('out1').receive({ payload: 'once', qos: 1 });
      await waitFor(() => received.length === 1, 'delivery');
      await delay(300);
      assert.equal(received.length, 1, 'exactly one copy after five redeploys');
      await helper.unload();
      assert.equal(embeddedBrokers.listenerCount('available'), 0, 'no connection left waiting for a broker');
    });

    it('keeps the configured subscription of a persistent session at the broker across a redeploy, not dynamic ones', async () => {
      const persistent = {
        cleanSession: false,
        sessionExpiry: protocolVersion === 5 ? 300 : 0,
        clientId: `durable-persist-${protocolVersion}`,
      };
      const flow = (name: string) => [
        configNode(persistent),
        inNode('in1', 'keep/#', { name, topicType: 'static' }),
        sink('in1'),
        inNode('dyn', '', { name, topicType: 'dynamic', inputs: 1 }),
        sink('dyn'),
      ];
      const unsubscribed: string[] = [];
      const watched = new Set<MqttClient>();
      const deploy = async (type: 'nodes' | 'full', nodes: Record<string, unknown>[]) => {
        await helper.setFlows(nodes, type);
        await connected();
        const client = connectionOf().transport.client;
        if (!watched.has(client)) {
          watched.add(client);
          client.on('packetsend', (packet: Packet) => {
            if (packet.cmd === 'unsubscribe') unsubscribed.push(...packet.unsubscriptions);
          });
        }
      };
      await helper.load(allNodes, flow('first'));
      await deploy('nodes', flow('first'));
      helper.getNode('dyn').receive({ action: 'subscribe', topic: 'drop/#' });
      await waitFor(
        () => connectionOf().brokerSubscriptions().size === 2,
        'both subscriptions at the broker',
      );
      // A redeploy of the in nodes alone: the connection stays and the nodes unsubscribe.
      await deploy('nodes', flow('second'));
      await waitFor(() => unsubscribed.length === 1, 'one UNSUBSCRIBE');
      assert.deepEqual(unsubscribed, ['drop/#'], 'a redeploy unsubscribes only the dynamic filter');
      // A full redeploy also restarts the config node, which may close before the in nodes.
      helper.getNode('dyn').receive({ action: 'subscribe', topic: 'drop/#' });
      await waitFor(() => connectionOf().brokerSubscriptions().size === 2, 'both subscriptions again');
      await deploy('full', flow('third'));
      await waitFor(() => unsubscribed.length === 2, 'a second UNSUBSCRIBE');
      assert.deepEqual(
        unsubscribed,
        ['drop/#', 'drop/#'],
        'a full redeploy unsubscribes only the dynamic filter',
      );
      // Deleting the node removes its subscription from the session.
      await deploy('nodes', [configNode(persistent), inNode('other', 'x'), sink('other')]);
      await waitFor(() => unsubscribed.includes('keep/#'), 'the UNSUBSCRIBE of the deleted node');
    });

    it('shows a CONNACK refusal for bad credentials in red on every node using the config', async () => {
      const secured = new Mosquitto({ users: { alice: 'right-password' } });
      await secured.start();
      try {
        const flow = [
          { ...configNode(), port: secured.port },
          outNode('out1', { topic: 't' }),
          inNode('in1', 't'),
          sink('in1'),
        ];
        await helper.load(allNodes, flow, { [CONFIG]: { user: 'alice', password: 'wrong' } });
        const statuses = [watchStatus(helper.getNode('out1')), watchStatus(helper.getNode('in1'))];
        for (const nodeStatuses of statuses) {
          await waitFor(
            () => nodeStatuses.some((s) => s.text?.includes('refused by the broker')),
            'the refusal',
          );
          const refusal = nodeStatuses.find((s) => s.text?.includes('refused by the broker'));
          assert.equal(refusal?.fill, 'red');
          assert.match(
            refusal!.text!,
            protocolVersion === 5
              ? /bad user name or password \(code 134\)|not authorised \(code 135\)/
              : /not authorised \(code 5\)|bad user name or password \(code 4\)/,
          );
        }
      } finally {
        await secured.dispose();
      }
    });

    it('verifies the broker certificate over mqtts: refuses an unknown CA with the reason, connects with the right one', async () => {
      const certificates = makeCertificates();
      const tlsBroker = new Mosquitto({ tls: certificates });
      await tlsBroker.start();
      try {
        const mqtts = { transport: 'mqtts', port: tlsBroker.tlsPort, host: 'localhost' };
        await helper.load(
          [...allNodes, tlsConfigNode],
          [{ ...configNode(mqtts), tls: '' }, inNode('in1', 't'), sink('in1')],
        );
        const statuses = watchStatus(helper.getNode('in1'));
        await waitFor(() => statuses.some((s) => s.fill === 'red'), 'a TLS failure');
        assert.match(
          statuses.find((s) => s.fill === 'red')!.text!,
          /disconnected: .*(self[- ]signed|unable to (get|verify)|certificate)/i,
        );
        await helper.unload();
        const tls = {
          id: 'tls1',
          type: 'tls-config',
          cert: '',
          key: '',
          ca: certificates.caFile,
          verifyservercert: true,
          servername: '',
        };
        const flow = [
          { ...configNode(mqtts), tls: 'tls1' },
          tls,
          outNode('out1', { topic: 't' }),
          inNode('in1', 't'),
          sink('in1'),
        ];
        await helper.load([...allNodes, tlsConfigNode], flow);
        const received = collect(helper.getNode('in1-sink'));
        await connected();
        helper.getNode('out1').receive({ payload: 'over tls', qos: 1 });
        await waitFor(() => received.length === 1, 'delivery over TLS');
      } finally {
        await tlsBroker.dispose();
      }
    });
  });
}
