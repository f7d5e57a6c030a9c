import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'mocha';
import {
  allNodes,
  collect,
  completionObservers,
  helper,
  loggedLines,
  translate,
  watchStatus,
} from './support/node-red.js';
import {
  brokerConfigNode,
  embeddedBrokerNode,
  helperNode,
  mqttInNode,
  mqttOutNode,
} from './support/flows.js';
import { temporaryDirectory } from './support/node-red-process.js';
import { waitFor } from './support/wait.js';

// Connect and disconnect actions, a connection that waits for one, msg.broker and MQTT 3.1 on the
// embedded transport: they mean there what they mean for a network broker. A clean session goes
// through the broker's core, a persistent one speaks MQTT over an in-process stream: both are run.
const CONFIG = 'c0000000000000032';
const connectionOf = () =>
  (helper.getNode(CONFIG) as unknown as { connection: { state: string } }).connection;
const waitingText = translate('durable-mqtt.status.waiting-for-connect');
const errorText = (msg: Record<string, unknown>) =>
  (msg.error as { message: string }).message.replace(/^\w*Error: /, '');

for (const cleanSession of [true, false]) {
  const session = cleanSession ? 'a clean session (the core)' : 'a persistent session (MQTT in-process)';

  describe(`connection actions on the embedded transport, with ${session}`, () => {
    before(() => helper.startServer());
    beforeEach(() => helper.settings({ userDir: temporaryDirectory('durable-mqtt-userdir-') }));
    after(() => helper.stopServer());
    afterEach(() => helper.unload());

    const configNode = (extra: Record<string, unknown> = {}) =>
      brokerConfigNode({ id: CONFIG, clientId: `parity-embedded-${cleanSession}`, cleanSession, ...extra });
    const flow = (configExtra: Record<string, unknown> = {}) => [
      embeddedBrokerNode(0),
      configNode(configExtra),
      mqttOutNode({ id: 'out1', broker: CONFIG, topic: 'e/t', qos: '1', persistence: 'queued', wires: [[]] }),
      mqttInNode({ id: 'in1', broker: CONFIG, topic: '', topicType: 'dynamic', wires: [['sink']] }),
      helperNode('sink'),
      ...completionObservers('out1', 'in1'),
    ];

    it('with "connect automatically" off, queues until a connect action, then delivers', async () => {
      await helper.load(allNodes, flow({ autoConnect: false }));
      const statuses = watchStatus(helper.getNode('out1'));
      const received = collect(helper.getNode('sink'));
      const completed = collect(helper.getNode('completed'));
      helper.getNode('in1').receive({ action: 'subscribe', topic: 'e/#' });
      helper.getNode('out1').receive({ payload: 'm1' });
      helper.getNode('out1').receive({ payload: 'm2' });
      await waitFor(
        () => statuses.some((s) => s.text === `${waitingText} · 2 queued`),
        'waiting for a connect action, two queued',
      );
      assert.equal(connectionOf().state, 'stopped');

      helper.getNode('out1').receive({ action: 'connect' });
      await waitFor(() => received.length === 2, 'both messages, once connected');
      assert.deepEqual(
        received.map((m) => m.payload),
        ['m1', 'm2'],
      );
      await waitFor(() => completed.some((m) => m.action === 'connect'), 'the connect action completed');
    });

    it('disconnect stops the connection for every node of the config, nothing queued is lost, connect resumes', async () => {
      await helper.load(allNodes, flow());
      const received = collect(helper.getNode('sink'));
      await waitFor(() => connectionOf().state === 'connected', 'connected');
      helper.getNode('in1').receive({ action: 'subscribe', topic: 'e/#' });
      helper.getNode('out1').receive({ payload: 'before' });
      await waitFor(() => received.length === 1, 'a message before');

      helper.getNode('out1').receive({ action: 'disconnect' });
      await waitFor(() => connectionOf().state === 'stopped', 'stopped');
      const inStatuses = watchStatus(helper.getNode('in1'));
      const outStatuses = watchStatus(helper.getNode('out1'));
      helper.getNode('out1').receive({ payload: 'while' });
      await waitFor(() => outStatuses.some((s) => s.text === `${waitingText} · 1 queued`), 'one queued');

      helper.getNode('in1').receive({ action: 'connect' });
      await waitFor(() => received.length === 2, 'the queued message, after the connect');
      assert.equal(received[1].payload, 'while');
      await waitFor(() => inStatuses.some((s) => s.text === 'connected'), "the in node's status back");
    });

    it('msg.broker: refuses what means nothing to an embedded broker, and changes what does', async () => {
      await helper.load(allNodes, flow({ autoConnect: false }));
      const caught = collect(helper.getNode('caught'));
      const completed = collect(helper.getNode('completed'));
      const received = collect(helper.getNode('sink'));
      helper.getNode('out1').receive({ action: 'connect', broker: { port: 1884 } });
      helper.getNode('out1').receive({ action: 'connect', broker: { protocolVersion: 5 } });
      await waitFor(() => caught.length === 2, 'both refused');
      assert.deepEqual(caught.map(errorText).sort(), [
        translate('durable-mqtt.errors.broker-override.embedded', { key: 'port' }),
        translate('durable-mqtt.errors.broker-override.embedded', { key: 'protocolVersion' }),
      ]);
      assert.equal(connectionOf().state, 'stopped', 'still waiting');

      helper
        .getNode('out1')
        .receive({ action: 'connect', broker: { clientid: 'parity-renamed', protocolVersion: 3 } });
      await waitFor(() => completed.length === 1, 'connected with the new settings');
      helper.getNode('in1').receive({ action: 'subscribe', topic: 'e/#' });
      helper.getNode('out1').receive({ payload: 'over 3.1' });
      await waitFor(() => received.length === 1, 'a round trip');
    });

    it('MQTT 3.1: connects to the embedded broker and round-trips a message', async () => {
      await helper.load(allNodes, flow({ protocolVersion: 3 }));
      const received = collect(helper.getNode('sink'));
      await waitFor(() => connectionOf().state === 'connected', 'connected over MQTT 3.1');
      helper.getNode('in1').receive({ action: 'subscribe', topic: 'e/#' });
      helper.getNode('out1').receive({ payload: 'hello 3.1' });
      await waitFor(() => received.length === 1, 'the message back');
      assert.equal(received[0].payload, 'hello 3.1');
      if (cleanSession) return; // the core has no protocol level
      // Connected: the broker took a CONNECT of protocol level 3, named MQIsdp.
      const { transport } = connectionOf() as unknown as {
        transport: { client: { options: { protocolVersion: number; protocolId: string } } };
      };
      assert.equal(transport.client.options.protocolVersion, 3);
      assert.equal(transport.client.options.protocolId, 'MQIsdp');
    });
  });
}

describe('an in node with an MQTT 5 subscription option that is not one', () => {
  before(() => helper.startServer());
  after(() => helper.stopServer());
  afterEach(() => helper.unload());

  it('says so in its status and the log at deploy, and refuses every msg with that error', async () => {
    const flow = [
      embeddedBrokerNode(0),
      brokerConfigNode({ id: CONFIG, clientId: 'parity-bad-option' }),
      mqttInNode({ id: 'in1', broker: CONFIG, topic: '', topicType: 'dynamic', rh: 7, wires: [[]] }),
      ...completionObservers('in1'),
    ];
    await helper.load(allNodes, flow);
    const caught = collect(helper.getNode('caught'));
    const expected = translate('durable-mqtt.errors.invalid-subscription-option', {
      option: 'rh',
      value: '7',
    });
    assert.ok(loggedLines('error', 'in1').includes(expected), 'the error at deploy');
    helper.getNode('in1').receive({ action: 'subscribe', topic: 'x' });
    await waitFor(() => caught.length === 1, 'the msg refused');
    assert.equal(errorText(caught[0]), expected);
  });
});
