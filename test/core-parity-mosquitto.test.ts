import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'mocha';
import type { IPublishPacket, MqttClient, Packet } from 'mqtt';
import type { ISubscribePacket } from 'mqtt-packet';
import {
  allNodes,
  collect,
  completionObservers,
  helper,
  loggedLines,
  translate,
  watchStatus,
} from './support/node-red.js';
import { Mosquitto, mosquittoBinary, observeBroker, type Observed } from './support/mosquitto.js';
import { skipUnlessInstalled } from './support/services.js';
import { brokerConfigNode, helperNode, mqttInNode, mqttOutNode } from './support/flows.js';
import { waitFor } from './support/wait.js';
import { freePort } from './support/ports.js';
import { temporaryDirectory } from './support/node-red-process.js';

// What the core mqtt nodes offer, here against a real Mosquitto over MQTT 3.1.1 and 5: connect and
// disconnect actions, a connection that waits for one, msg.broker, MQTT 5 subscription options and
// publish properties, topic aliases; and MQTT 3.1.
const CONFIG = 'c0000000000000031';
interface ConnectionInternals {
  state: string;
  options: { clientId: string; protocolVersion: number };
  brokerSubscriptions(): Map<string, number>;
  transport: { client: MqttClient };
}
const connectionOf = () =>
  (helper.getNode(CONFIG) as unknown as { connection: ConnectionInternals }).connection;
const waitingText = translate('durable-mqtt.status.waiting-for-connect');
/** The text of the error a Catch node got, without the "Error: " Node-RED puts before it. */
const errorText = (msg: Record<string, unknown>) =>
  (msg.error as { message: string }).message.replace(/^\w*Error: /, '');

/** Every PUBLISH and SUBSCRIBE the connection's current client sends from now on. */
function watchSent(): Packet[] {
  const sent: Packet[] = [];
  connectionOf().transport.client.on('packetsend', (packet: Packet) => sent.push(packet));
  return sent;
}

for (const protocolVersion of [4, 5] as const) {
  const version = protocolVersion === 5 ? 'MQTT 5' : 'MQTT 3.1.1';

  describe(`parity with the core mqtt nodes, against Mosquitto over ${version}`, () => {
    before(function () {
      skipUnlessInstalled(this, 'mosquitto', mosquittoBinary);
    });
    let broker: Mosquitto;
    let observer: MqttClient | undefined;
    let userDir: string;

    const configNode = (extra: Record<string, unknown> = {}) =>
      brokerConfigNode({
        id: CONFIG,
        port: broker.port,
        protocolVersion,
        clientId: `parity-${protocolVersion}`,
        ...extra,
      });
    const outNode = (id: string, extra: Record<string, unknown> = {}) =>
      mqttOutNode({ id, broker: CONFIG, qos: '1', wires: [[]], ...extra });
    const inNode = (id: string, topic: string, extra: Record<string, unknown> = {}) =>
      mqttInNode({ id, broker: CONFIG, topic, qos: 1, datatype: 'utf8', wires: [[`${id}-sink`]], ...extra });
    const dynamicIn = (id: string) => inNode(id, '', { topicType: 'dynamic' });
    const sink = (id: string) => helperNode(`${id}-sink`);
    const connected = () => waitFor(() => connectionOf().state === 'connected', 'connection to Mosquitto');

    /** An MQTT.js v5 client of Mosquitto, subscribed to `filter`: what it receives. */
    async function observe(filter: string): Promise<Observed[]> {
      const observing = await observeBroker(broker.port, filter, 5);
      observer = observing.client;
      return observing.seen;
    }

    before(async () => {
      broker = new Mosquitto();
      await broker.start();
      await helper.startServer();
    });
    beforeEach(() => {
      userDir = temporaryDirectory('durable-mqtt-userdir-');
      helper.settings({ userDir });
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

    it('with "connect automatically" off, waits for a connect action: says so, queues durable messages, refuses the others', async () => {
      const flow = [
        configNode({ autoConnect: false }),
        outNode('outQueued', { topic: 'ac/q', persistence: 'queued' }),
        outNode('outDirect', { topic: 'ac/n' }),
        ...completionObservers('outQueued', 'outDirect'),
      ];
      await helper.load(allNodes, flow);
      const statuses = watchStatus(helper.getNode('outQueued'));
      const caught = collect(helper.getNode('caught'));
      const completed = collect(helper.getNode('completed'));
      const seen = await observe('ac/#');
      assert.equal(connectionOf().state, 'stopped', 'no connection before the action');

      helper.getNode('outDirect').receive({ payload: 'n1' });
      for (const payload of ['q1', 'q2', 'q3']) helper.getNode('outQueued').receive({ payload });
      await waitFor(() => caught.length === 1, 'the direct publish refused');
      assert.equal(
        errorText(caught[0]),
        translate('durable-mqtt.errors.dropped-not-connected', { topic: 'ac/n' }),
      );
      await waitFor(
        () => statuses.some((s) => s.text === `${waitingText} · 3 queued`),
        'the status: waiting for a connect action, three queued',
      );

      helper.getNode('outQueued').receive({ action: 'connect' });
      await waitFor(() => seen.length === 3, 'the queued messages, once connected');
      assert.deepEqual(
        seen.map((m) => m.payload),
        ['q1', 'q2', 'q3'],
      );
      assert.equal(connectionOf().state, 'connected');
      await waitFor(() => completed.some((m) => m.action === 'connect'), 'the connect action completed');
      assert.equal(caught.length, 1, 'nothing else refused');
    });

    it('disconnect on an in node stops the shared connection for all its nodes; a durable out node queues meanwhile; connect brings everything back', async () => {
      const flow = [
        configNode(),
        dynamicIn('in1'),
        sink('in1'),
        outNode('out1', { topic: 'dc/q', persistence: 'queued' }),
        ...completionObservers('in1'),
      ];
      await helper.load(allNodes, flow);
      const received = collect(helper.getNode('in1-sink'));
      const completed = collect(helper.getNode('completed'));
      const outStatuses = watchStatus(helper.getNode('out1'));
      await connected();
      helper.getNode('in1').receive({ action: 'subscribe', topic: 'dc/#' });
      await waitFor(() => connectionOf().brokerSubscriptions().has('dc/#'), 'the dynamic subscription');
      helper.getNode('out1').receive({ payload: 'before' });
      await waitFor(() => received.length === 1, 'a message before the disconnect');

      helper.getNode('in1').receive({ action: 'disconnect' });
      await waitFor(() => connectionOf().state === 'stopped', 'the connection stopped');
      await waitFor(() => completed.some((m) => m.action === 'disconnect'), 'the disconnect completed');
      helper.getNode('out1').receive({ payload: 'while-1' });
      helper.getNode('out1').receive({ payload: 'while-2' });
      await waitFor(
        () => outStatuses.some((s) => s.text === `${waitingText} · 2 queued`),
        "the out node's status: waiting, two queued",
      );
      assert.equal(received.length, 1, 'nothing received while disconnected');

      helper.getNode('in1').receive({ action: 'connect' });
      await waitFor(() => received.length === 3, 'the queued messages, through the subscription asked again');
      assert.deepEqual(
        received.map((m) => m.payload),
        ['before', 'while-1', 'while-2'],
      );
    });

    it('msg.broker with connect changes the settings as the core nodes allow, never logs a password, and refuses what it cannot apply', async () => {
      const deadPort = await freePort();
      const flow = [
        configNode({ port: deadPort, autoConnect: false, clientId: 'parity-a' }),
        outNode('out1', { topic: 'mb/t' }),
        ...completionObservers('out1'),
      ];
      await helper.load(allNodes, flow);
      const caught = collect(helper.getNode('caught'));
      const completed = collect(helper.getNode('completed'));
      const out = helper.getNode('out1');
      const password = 'hunter2-not-in-any-log';

      out.receive({
        action: 'connect',
        broker: { broker: '127.0.0.1', port: broker.port, clientid: 'parity-b', username: 'u', password },
      });
      await waitFor(() => completed.length === 1, 'connected with the settings of msg.broker');
      assert.equal(connectionOf().options.clientId, 'parity-b');
      assert.equal(connectionOf().state, 'connected');

      out.receive({ action: 'connect', broker: { clientid: 'parity-c' } });
      await waitFor(() => caught.length === 1, 'refused while connected without force');
      assert.equal(errorText(caught[0]), translate('durable-mqtt.errors.broker-override.connected'));
      assert.equal(connectionOf().options.clientId, 'parity-b', 'nothing changed');

      out.receive({ action: 'connect', broker: { clientid: 'parity-c', force: true } });
      await waitFor(() => completed.length === 2, 'forced: reconnected with the new client id');
      assert.equal(connectionOf().options.clientId, 'parity-c');
      await waitFor(() => broker.output.includes('as parity-c'), 'Mosquitto sees the new client id');

      out.receive({ action: 'connect', broker: { verifyservercert: true, force: true } });
      out.receive({ action: 'connect', broker: { port: 'eighty', force: true } });
      out.receive({ action: 'jump' });
      await waitFor(() => caught.length === 4, 'an unknown key, a bad value and an unknown action refused');
      // The unknown action is refused at once, the others after a turn: compared as a set.
      const messages = caught.slice(1).map(errorText).sort();
      assert.equal(messages[0], translate('durable-mqtt.errors.unknown-out-action', { action: 'jump' }));
      assert.match(messages[1], /^msg\.broker\.port has a value that cannot be used/);
      assert.match(messages[2], /^msg\.broker\.verifyservercert is not a setting/);
      assert.equal(connectionOf().state, 'connected', 'a refused msg.broker leaves the connection alone');

      const logged = [...loggedLines('log'), ...loggedLines('warn'), ...loggedLines('error')];
      assert.ok(
        logged.some((line) => line.includes('Settings changed by msg.broker')),
        'the change is logged',
      );
      assert.ok(!logged.some((line) => line.includes(password)), 'the password appears in no log line');
    });

    it('a persistent session switched to a clean one with the same client id: says the broker discards it, and how to keep it', async () => {
      const persistent = configNode({ cleanSession: false, clientId: 'parity-session', sessionExpiry: 600 });
      await helper.load(allNodes, [persistent, inNode('in1', 'ps/#'), sink('in1')]);
      await connected();
      await helper.unload();
      await helper.load(allNodes, [
        configNode({ clientId: 'parity-session' }),
        inNode('in1', 'ps/#'),
        sink('in1'),
      ]);
      const expiry =
        protocolVersion === 5 ? ` ${translate('durable-mqtt.errors.session-expires', { seconds: 600 })}` : '';
      assert.ok(
        loggedLines('warn', CONFIG).includes(
          translate('durable-mqtt.errors.session-discarded', {
            broker: `mqtt://127.0.0.1:${broker.port}`,
            clientId: 'parity-session',
            expiry,
          }),
        ),
        'a warning that names the broker and the client id',
      );
    });

    if (protocolVersion === 4) {
      it('MQTT 5 subscription options and publish properties on MQTT 3.1.1: says they are not sent', async () => {
        const flow = [
          configNode(),
          inNode('in1', 'o/#', { nl: true }),
          sink('in1'),
          outNode('out1', { topic: 'o/t', contentType: 'text/plain' }),
        ];
        await helper.load(allNodes, flow);
        const seen = await observe('o/#');
        helper.getNode('out1').receive({ payload: 'x' });
        await waitFor(() => seen.length === 1, 'the message, without properties');
        assert.equal(seen[0].packet.properties?.contentType, undefined);
        assert.ok(
          loggedLines('warn', 'in1').includes(translate('durable-mqtt.errors.subscription-options-v5')),
        );
        assert.ok(loggedLines('warn', 'out1').includes(translate('durable-mqtt.errors.properties-need-v5')));
      });
      return;
    }

    it('No Local: an in node does not get what its own connection publishes, and gets the others', async () => {
      const flow = [
        configNode(),
        inNode('in1', 'nl/#', { nl: true }),
        sink('in1'),
        outNode('out1', { topic: 'nl/t' }),
        ...completionObservers('out1'),
      ];
      await helper.load(allNodes, flow);
      const received = collect(helper.getNode('in1-sink'));
      const completed = collect(helper.getNode('completed'));
      const seen = await observe('nl/#');
      await connected();
      helper.getNode('out1').receive({ payload: 'own' });
      // Acknowledged: Mosquitto has routed it, after the SUBSCRIBE that went before it.
      await waitFor(() => completed.length === 1 && seen.length === 1, 'own message at the broker');
      await observer!.publishAsync('nl/t', 'other', { qos: 1 });
      await waitFor(() => received.length === 1, "another client's message");
      assert.deepEqual(
        received.map((m) => m.payload),
        ['other'],
      );
    });

    it('Retain As Published keeps the retain flag of a forwarded message; without it the flag is cleared', async () => {
      const flow = [
        configNode(),
        inNode('kept', 'rap1/#', { rap: true }),
        sink('kept'),
        inNode('cleared', 'rap0/#', { rap: 'false' }),
        sink('cleared'),
        outNode('probe', { topic: 'probe/t' }),
        ...completionObservers('probe'),
      ];
      await helper.load(allNodes, flow);
      const kept = collect(helper.getNode('kept-sink'));
      const cleared = collect(helper.getNode('cleared-sink'));
      const completed = collect(helper.getNode('completed'));
      await connected();
      // Acknowledged after the SUBSCRIBEs that went before it on the connection: they are in place.
      helper.getNode('probe').receive({ payload: '' });
      await waitFor(() => completed.length === 1, 'a round trip after the subscriptions');
      await observe('unused');
      // Published after the subscriptions: forwarded as live messages, not sent as retained ones.
      await observer!.publishAsync('rap1/t', 'r', { qos: 1, retain: true });
      await observer!.publishAsync('rap0/t', 'r', { qos: 1, retain: true });
      await waitFor(() => kept.length === 1 && cleared.length === 1, 'both forwarded');
      assert.equal(kept[0].retain, true);
      assert.equal(cleared[0].retain, false);
      for (const topic of ['rap1/t', 'rap0/t']) await observer!.publishAsync(topic, '', { retain: true });
    });

    it('Retain Handling 2: no retained message at subscribe; 0: the retained message first', async () => {
      await observe('unused');
      await observer!.publishAsync('rh/t', 'old', { qos: 1, retain: true });
      const flow = [
        configNode(),
        inNode('never', 'rh/+', { rh: 2 }),
        sink('never'),
        inNode('always', 'rh/#', { rh: '0' }),
        sink('always'),
      ];
      await helper.load(allNodes, flow);
      const never = collect(helper.getNode('never-sink'));
      const always = collect(helper.getNode('always-sink'));
      await waitFor(() => always.length === 1, 'the retained message for Retain Handling 0');
      await observer!.publishAsync('rh/t', 'live', { qos: 1 });
      await waitFor(() => never.length === 1 && always.length === 2, 'the live message for both');
      assert.deepEqual(
        never.map((m) => m.payload),
        ['live'],
      );
      assert.deepEqual(
        always.map((m) => m.payload),
        ['old', 'live'],
      );
      await observer!.publishAsync('rh/t', '', { retain: true });
    });

    it('dynamic subscriptions take the options per topic object, list them, and refuse a bad one', async () => {
      const flow = [configNode(), dynamicIn('in1'), sink('in1'), ...completionObservers('in1')];
      await helper.load(allNodes, flow);
      const caught = collect(helper.getNode('caught'));
      const listed = collect(helper.getNode('in1-sink'));
      await connected();
      const sent = watchSent();
      helper.getNode('in1').receive({
        action: 'subscribe',
        topic: [{ topic: 'dyn/a', nl: true, rh: 2 }, 'dyn/b'],
        rap: true,
      });
      await waitFor(() => sent.filter((p) => p.cmd === 'subscribe').length === 2, 'both SUBSCRIBEs');
      const options = sent
        .filter((p) => p.cmd === 'subscribe')
        .map((p) => (p as ISubscribePacket).subscriptions[0]);
      assert.deepEqual(
        options.map(({ topic, nl, rap, rh }) => ({ topic, nl, rap, rh })),
        [
          { topic: 'dyn/a', nl: true, rap: true, rh: 2 },
          { topic: 'dyn/b', nl: false, rap: true, rh: 0 },
        ],
      );
      helper.getNode('in1').receive({ action: 'getSubscriptions' });
      await waitFor(() => listed.length === 1, 'the list');
      assert.deepEqual(listed[0].payload, [
        { topic: 'dyn/a', qos: 1, nl: true, rap: true, rh: 2 },
        { topic: 'dyn/b', qos: 1, nl: false, rap: true, rh: 0 },
      ]);
      helper.getNode('in1').receive({ action: 'subscribe', topic: { topic: 'dyn/c', rh: 3 } });
      await waitFor(() => caught.length === 1, 'a bad Retain Handling refused');
      assert.equal(
        errorText(caught[0]),
        translate('durable-mqtt.errors.invalid-subscription-option', { option: 'rh', value: '3' }),
      );
    });

    it('two in nodes on one filter with different options: the options that serve both, and a warning', async () => {
      const flow = [
        configNode(),
        inNode('local', 'cf/#', { nl: true }),
        sink('local'),
        inNode('all', 'cf/#'),
        sink('all'),
        outNode('out1', { topic: 'cf/t' }),
        ...completionObservers('out1'),
      ];
      await helper.load(allNodes, flow);
      const local = collect(helper.getNode('local-sink'));
      const all = collect(helper.getNode('all-sink'));
      await connected();
      const none = 'nl false, rap false, rh 0';
      assert.ok(
        loggedLines('warn', CONFIG).includes(
          translate('durable-mqtt.errors.subscription-options-conflict', {
            topic: 'cf/#',
            asked: 'nl true, rap false, rh 0',
            inForce: none,
          }),
        ),
        'the warning names the filter, what was asked and what is in force',
      );
      helper.getNode('out1').receive({ payload: 'own' });
      await waitFor(() => all.length === 1 && local.length === 1, 'both get the message, as warned');
    });

    it('publish properties from the node settings and from msg, the node winning where it sets one, as in the core node', async () => {
      const flow = [
        configNode(),
        outNode('set', {
          topic: 'pp/set',
          contentType: 'text/plain',
          respTopic: 'reply/set',
          correl: 'corr-1',
          userProps: '{"site":"north","tags":["a","b"]}',
          expiry: '300',
        }),
        outNode('partial', { topic: 'pp/partial', contentType: 'text/plain' }),
      ];
      await helper.load(allNodes, flow);
      await connected();
      const seen = await observe('pp/#');
      helper
        .getNode('set')
        .receive({ payload: '1', contentType: 'application/json', userProperties: { x: 'y' } });
      helper.getNode('partial').receive({
        payload: '2',
        contentType: 'application/json',
        responseTopic: 'reply/msg',
        correlationData: Buffer.from('corr-2'),
        userProperties: { from: 'msg' },
        messageExpiryInterval: 60,
      });
      await waitFor(() => seen.length === 2, 'both messages');
      const [set, partial] = ['pp/set', 'pp/partial'].map((t) => seen.find((m) => m.topic === t)!.packet);
      assert.equal(set.properties?.contentType, 'text/plain');
      assert.equal(set.properties?.responseTopic, 'reply/set');
      assert.equal(set.properties?.correlationData?.toString(), 'corr-1');
      assert.deepEqual({ ...set.properties?.userProperties }, { site: 'north', tags: ['a', 'b'] });
      assert.ok((set.properties?.messageExpiryInterval ?? 0) > 0, 'an expiry, counted down by the broker');
      assert.ok((set.properties?.messageExpiryInterval ?? 0) <= 300);
      assert.equal(partial.properties?.contentType, 'text/plain', "the node's content type wins");
      assert.equal(partial.properties?.responseTopic, 'reply/msg');
      assert.equal(partial.properties?.correlationData?.toString(), 'corr-2');
      assert.deepEqual({ ...partial.properties?.userProperties }, { from: 'msg' });
      assert.ok((partial.properties?.messageExpiryInterval ?? 0) <= 60);
    });

    it('refuses a publish property setting that cannot be sent: red status, an error at deploy, every msg refused', async () => {
      const flow = [
        configNode(),
        outNode('out1', { topic: 'bad/t', userProps: 'not json' }),
        ...completionObservers('out1'),
      ];
      await helper.load(allNodes, flow);
      const caught = collect(helper.getNode('caught'));
      const expected = translate('durable-mqtt.errors.invalid-property-setting', { setting: 'userProps' });
      assert.ok(loggedLines('error', 'out1').includes(expected));
      helper.getNode('out1').receive({ payload: 'x' });
      await waitFor(() => caught.length === 1, 'the msg refused');
      assert.equal(errorText(caught[0]), expected);
    });

    it('topic aliases: the topic name once, then its alias; after a reconnect, the name again; every message arrives with its topic', async () => {
      const flow = [
        configNode({ topicAliases: true }),
        outNode('out1', { topic: 'alias/a/rather/long/topic' }),
      ];
      await helper.load(allNodes, flow);
      await connected();
      const seen = await observe('alias/#');
      let sent = watchSent();
      const published = () => sent.filter((p): p is IPublishPacket => p.cmd === 'publish');
      for (const payload of ['1', '2']) helper.getNode('out1').receive({ payload });
      await waitFor(() => seen.length === 2, 'two messages');
      assert.equal(published()[0].topic, 'alias/a/rather/long/topic');
      assert.equal(published()[1].topic, '', 'the second by its alias alone');
      assert.equal(published()[1].properties?.topicAlias, published()[0].properties?.topicAlias);

      helper.getNode('out1').receive({ action: 'disconnect' });
      await waitFor(() => connectionOf().state === 'stopped', 'stopped');
      helper.getNode('out1').receive({ action: 'connect' });
      await connected();
      sent = watchSent();
      helper.getNode('out1').receive({ payload: '3' });
      await waitFor(() => seen.length === 3, 'the message after the reconnect');
      assert.equal(published()[0].topic, 'alias/a/rather/long/topic', 'a new connection: the name again');
      assert.deepEqual(
        seen.map((m) => [m.topic, m.payload]),
        ['1', '2', '3'].map((p) => ['alias/a/rather/long/topic', p]),
      );
    });
  });
}

describe('MQTT 3.1 (protocol level 3, MQIsdp) against Mosquitto', () => {
  before(function () {
    skipUnlessInstalled(this, 'mosquitto', mosquittoBinary);
  });
  let broker: Mosquitto;
  before(async () => {
    broker = new Mosquitto();
    await broker.start();
    await helper.startServer();
  });
  after(async () => {
    await helper.stopServer();
    await broker?.dispose();
  });
  afterEach(() => helper.unload());

  it('connects as an MQTT 3.1 client and round-trips a message', async () => {
    const flow = [
      brokerConfigNode({ id: CONFIG, port: broker.port, protocolVersion: 3, clientId: 'parity-v31' }),
      mqttOutNode({ id: 'out1', broker: CONFIG, topic: 'v31/t', qos: '1', wires: [[]] }),
      mqttInNode({ id: 'in1', broker: CONFIG, topic: 'v31/#', datatype: 'utf8', wires: [['sink']] }),
      helperNode('sink'),
    ];
    await helper.load(allNodes, flow);
    const received = collect(helper.getNode('sink'));
    await waitFor(() => connectionOf().state === 'connected', 'connected');
    // Mosquitto logs each connection with its protocol: p1 is MQTT 3.1 (p2 3.1.1, p5 5).
    await waitFor(() => /as parity-v31 \(p1,/.test(broker.output), 'Mosquitto sees an MQTT 3.1 client');
    helper.getNode('out1').receive({ payload: 'hello 3.1' });
    await waitFor(() => received.length === 1, 'the message back');
    assert.equal(received[0].payload, 'hello 3.1');
  });
});
