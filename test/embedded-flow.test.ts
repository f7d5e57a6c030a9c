import assert from 'node:assert/strict';
import net from 'node:net';
import { after, afterEach, before, describe, it } from 'mocha';
import mqtt from 'mqtt';
import {
  allNodes,
  collect,
  completionObservers,
  helper,
  translate,
  type RuntimeNode,
  watchStatus,
} from './support/node-red.js';
import { freePort } from './support/ports.js';
import { connectWhenListening } from './support/embedded-broker.js';
import {
  EMBEDDED_BROKER_ID,
  brokerConfigNode,
  embeddedBrokerNode,
  helperNode,
  mqttInNode,
  mqttOutNode,
} from './support/flows.js';
import { temporaryDirectory } from './support/node-red-process.js';
import { delay, waitFor } from './support/wait.js';

const BROKER = EMBEDDED_BROKER_ID;
const CONFIG = 'c0000000000000001';
const brokerNode = embeddedBrokerNode;
function configNode(extra: Record<string, unknown> = {}) {
  return brokerConfigNode({ id: CONFIG, embedded: BROKER, clientId: 'test-embedded', ...extra });
}
function outNode(id: string, extra: Record<string, unknown> = {}) {
  return mqttOutNode({ id, broker: CONFIG, ...extra });
}
function inNode(id: string, topic: string, extra: Record<string, unknown> = {}) {
  return mqttInNode({ id, broker: CONFIG, topic, wires: [[`${id}-sink`]], ...extra });
}
function sink(id: string) {
  return helperNode(`${id}-sink`);
}
type Connection = {
  connected: boolean;
  brokerSubscriptions(): Map<string, number>;
  listenerCount(event: string): number;
};
function connectionOf(): Connection {
  return (helper.getNode(CONFIG) as unknown as { connection: Connection }).connection;
}
async function connected() {
  await waitFor(() => connectionOf().connected, 'the broker config to connect');
}

describe('durable mqtt nodes with the embedded broker', () => {
  before(() => helper.startServer());
  after(() => helper.stopServer());
  afterEach(() => helper.unload());

  for (const qos of [0, 1, 2]) {
    it(`delivers a message out → embedded broker → in at QoS ${qos}, calling done() once delivered`, async () => {
      const flow = [
        brokerNode(),
        configNode(),
        outNode('out1', { topic: 'room/temp', qos: String(qos) }),
        inNode('in1', 'room/+', { qos }),
        sink('in1'),
        ...completionObservers('out1'),
      ];
      await helper.load(allNodes, flow);
      const received = collect(helper.getNode('in1-sink'));
      const completed = collect(helper.getNode('completed'));
      await connected();
      helper.getNode('out1').receive({ payload: { celsius: 21.5 } });
      await waitFor(() => received.length === 1 && completed.length === 1, 'delivery and completion');
      assert.deepEqual(received[0].payload, { celsius: 21.5 });
      assert.equal(received[0].topic, 'room/temp');
      assert.equal(received[0].qos, qos);
      assert.equal(received[0].retain, false);
    });
  }

  it('[MQTT-3.8.4-8] delivers at min(publication QoS, granted QoS) through a wildcard filter (core session, MQTT 3.1.1)', async () => {
    const flow = [
      brokerNode(),
      configNode(),
      outNode('out1', { topic: 'wild/b', qos: '2' }),
      inNode('in1', 'wild/#', { qos: 1 }),
      sink('in1'),
    ];
    await helper.load(allNodes, flow);
    const received = collect(helper.getNode('in1-sink'));
    await connected();
    helper.getNode('out1').receive({ payload: 'at 2' });
    await waitFor(() => received.length === 1, 'the message');
    assert.equal(received[0].qos, 1);
  });

  it('gives each in node exactly one copy when filters overlap, and subscribes each filter once at the broker', async () => {
    const flow = [
      brokerNode(),
      configNode(),
      outNode('out1', { topic: 'a/b' }),
      inNode('hash', 'a/#'),
      inNode('exact', 'a/b'),
      inNode('exact2', 'a/b'),
      inNode('dyn', '', { topicType: 'dynamic', inputs: 1 }),
      sink('hash'),
      sink('exact'),
      sink('exact2'),
      sink('dyn'),
    ];
    await helper.load(allNodes, flow);
    const sinks = Object.fromEntries(
      ['hash', 'exact', 'exact2', 'dyn'].map((id) => [id, collect(helper.getNode(`${id}-sink`))]),
    );
    await connected();
    // One node holding two overlapping filters.
    helper.getNode('dyn').receive({ action: 'subscribe', topic: ['a/#', 'a/+'] });
    await waitFor(() => connectionOf().brokerSubscriptions().size === 3, 'three filters at the broker');
    assert.deepEqual([...connectionOf().brokerSubscriptions().keys()].sort(), ['a/#', 'a/+', 'a/b']);
    helper.getNode('out1').receive({ payload: 'one' });
    helper.getNode('out1').receive({ payload: 'two' });
    await waitFor(() => sinks.dyn.length >= 2 && sinks.hash.length >= 2, 'both messages');
    await delay(200);
    for (const [id, messages] of Object.entries(sinks)) {
      assert.deepEqual(
        messages.map((m) => m.payload),
        ['one', 'two'],
        `${id} got one copy of each message`,
      );
    }
  });

  it('refuses a wildcard or empty publish topic with a catchable error and publishes nothing', async () => {
    const flow = [
      brokerNode(),
      configNode(),
      outNode('out1'),
      inNode('all', '#'),
      sink('all'),
      ...completionObservers('out1'),
    ];
    await helper.load(allNodes, flow);
    const received = collect(helper.getNode('all-sink'));
    const caught = collect(helper.getNode('caught'));
    await connected();
    helper.getNode('out1').receive({ topic: 'a/+', payload: 'x' });
    helper.getNode('out1').receive({ topic: '', payload: 'x' });
    helper.getNode('out1').receive({ topic: 'ok', payload: 'x', qos: 3 });
    helper.getNode('out1').receive({ topic: 'ok', payload: 'x', retain: 'yes' });
    await waitFor(() => caught.length === 4, 'four caught errors');
    const errors = caught.map((m) => (m.error as { message: string }).message);
    assert.match(errors[0], /Invalid topic "a\/\+": a topic to publish to cannot contain \+ or #/);
    assert.match(errors[1], /Invalid topic "": the topic is empty/);
    assert.match(errors[2], /Invalid QoS "3"/);
    assert.match(errors[3], /Invalid retain "yes"/);
    // A valid message after them proves the subscriber was listening all along.
    helper.getNode('out1').receive({ topic: 'ok', payload: 'valid' });
    await waitFor(() => received.length === 1, 'the valid message');
    await delay(100);
    assert.deepEqual(
      received.map((m) => m.payload),
      ['valid'],
    );
  });

  it('publishes to the topic a msg property or an environment variable holds, as the topic type says; an unreadable one is a catchable error', async () => {
    process.env.DURABLE_MQTT_TEST_TOPIC = 'from/env';
    const flow = [
      brokerNode(),
      configNode(),
      outNode('by-msg', { topic: 'payload.target', topicType: 'msg' }),
      outNode('by-env', { topic: 'DURABLE_MQTT_TEST_TOPIC', topicType: 'env' }),
      inNode('all', '#'),
      sink('all'),
      ...completionObservers('by-msg'),
    ];
    try {
      await helper.load(allNodes, flow);
      const received = collect(helper.getNode('all-sink'));
      const caught = collect(helper.getNode('caught'));
      await connected();
      helper.getNode('by-msg').receive({ topic: 'ignored', payload: { target: 'from/msg' } });
      helper.getNode('by-env').receive({ topic: 'ignored', payload: 'x' });
      helper.getNode('by-msg').receive({ payload: 'no target property' });
      await waitFor(() => received.length === 2 && caught.length === 1, 'two messages and one error');
      assert.deepEqual(received.map((m) => m.topic).sort(), ['from/env', 'from/msg']);
      assert.match((caught[0].error as { message: string }).message, /Invalid topic "undefined"/);
    } finally {
      delete process.env.DURABLE_MQTT_TEST_TOPIC;
    }
  });

  it('refuses an invalid filter in a dynamic subscription with a catchable error and subscribes nothing', async () => {
    const flow = [
      brokerNode(),
      configNode(),
      inNode('dyn', '', { topicType: 'dynamic', inputs: 1 }),
      sink('dyn'),
      ...completionObservers('dyn'),
    ];
    await helper.load(allNodes, flow);
    const caught = collect(helper.getNode('caught'));
    await connected();
    helper.getNode('dyn').receive({ action: 'subscribe', topic: ['good/+', 'bad/#/x'] });
    helper.getNode('dyn').receive({ action: 'subscribe', topic: 'a/b+' });
    helper.getNode('dyn').receive({ action: 'explode', topic: 'a' });
    await waitFor(() => caught.length === 3, 'three caught errors');
    assert.match(
      (caught[0].error as { message: string }).message,
      /Invalid topic filter "bad\/#\/x": # must be the last level/,
    );
    assert.match(
      (caught[1].error as { message: string }).message,
      /Invalid topic filter "a\/b\+": \+ and # must stand alone/,
    );
    assert.match((caught[2].error as { message: string }).message, /Unknown msg.action "explode"/);
    assert.equal(connectionOf().brokerSubscriptions().size, 0);
    helper.getNode('dyn').receive({ action: 'getSubscriptions' });
    const sinkMessages = collect(helper.getNode('dyn-sink'));
    await waitFor(() => sinkMessages.length === 1, 'getSubscriptions output');
    assert.deepEqual(sinkMessages[0].payload, []);
  });

  it('subscribes, lists and unsubscribes through msg.action', async () => {
    const flow = [
      brokerNode(),
      configNode(),
      outNode('out1'),
      inNode('dyn', '', { topicType: 'dynamic', inputs: 1 }),
      sink('dyn'),
    ];
    await helper.load(allNodes, flow);
    const received = collect(helper.getNode('dyn-sink'));
    await connected();
    helper.getNode('dyn').receive({ action: 'subscribe', topic: [{ topic: 'x/+', qos: 2 }, 'y/#'], qos: 0 });
    helper.getNode('dyn').receive({ action: 'getSubscriptions' });
    await waitFor(() => received.length === 1, 'subscription list');
    assert.deepEqual(received[0].payload, [
      { topic: 'x/+', qos: 2 },
      { topic: 'y/#', qos: 0 },
    ]);
    await waitFor(() => connectionOf().brokerSubscriptions().size === 2, 'two broker subscriptions');
    helper.getNode('out1').receive({ topic: 'x/1', payload: 'for x' });
    await waitFor(() => received.length === 2, 'message on x/1');
    helper.getNode('dyn').receive({ action: 'unsubscribe', topic: true });
    await waitFor(() => connectionOf().brokerSubscriptions().size === 0, 'no broker subscriptions');
    helper.getNode('out1').receive({ topic: 'x/1', payload: 'after unsubscribe' });
    await delay(200);
    assert.deepEqual(
      received.map((m) => m.payload),
      [
        [
          { topic: 'x/+', qos: 2 },
          { topic: 'y/#', qos: 0 },
        ],
        'for x',
      ],
    );
  });

  it('converts received payloads per datatype, and raises a catchable error for invalid JSON', async () => {
    const datatypes = ['auto-detect', 'utf8', 'buffer', 'json', 'base64'];
    const flow: Record<string, unknown>[] = [brokerNode(), configNode(), outNode('out1', { topic: 'data' })];
    // Node ids must not equal a datatype value, or Node-RED takes the property for a config-node reference.
    for (const datatype of datatypes)
      flow.push(inNode(`in-${datatype}`, 'data', { datatype }), sink(`in-${datatype}`));
    flow.push(...completionObservers(...datatypes.map((d) => `in-${d}`)));
    await helper.load(allNodes, flow);
    const sinks = Object.fromEntries(datatypes.map((d) => [d, collect(helper.getNode(`in-${d}-sink`))]));
    const caught = collect(helper.getNode('caught'));
    await connected();
    for (const payload of ['{"n":1}', 'plain text', Buffer.from([0xff, 0xfe, 0x00])])
      helper.getNode('out1').receive({ payload });
    await waitFor(() => sinks.utf8.length === 3 && caught.length === 2, 'all conversions');
    const jsonErrors = caught.filter((m) => (m.error as { source: { id: string } }).source.id === 'in-json');
    assert.equal(jsonErrors.length, 2, 'only the json node raises errors');
    assert.deepEqual(
      sinks['auto-detect'].map((m) => m.payload),
      [{ n: 1 }, 'plain text', Buffer.from([0xff, 0xfe, 0x00])],
    );
    assert.deepEqual(
      sinks.utf8.map((m) => m.payload),
      ['{"n":1}', 'plain text', Buffer.from([0xff, 0xfe, 0x00]).toString('utf8')],
    );
    assert.deepEqual(
      sinks.buffer.map((m) => m.payload),
      [Buffer.from('{"n":1}'), Buffer.from('plain text'), Buffer.from([0xff, 0xfe, 0x00])],
    );
    assert.deepEqual(
      sinks.base64.map((m) => m.payload),
      ['eyJuIjoxfQ==', 'cGxhaW4gdGV4dA==', '//4A'],
    );
    assert.deepEqual(
      sinks.json.map((m) => m.payload),
      [{ n: 1 }],
    );
    assert.match(
      (jsonErrors[0].error as { message: string }).message,
      /payload received on "data" is not valid JSON/,
    );
    assert.equal(jsonErrors[0].payload, 'plain text');
  });

  it('publishes every payload type as documented: Buffer, string, number, boolean, object, null', async () => {
    const flow = [
      brokerNode(),
      configNode(),
      outNode('out1', { topic: 'p' }),
      inNode('raw', 'p', { datatype: 'buffer' }),
      sink('raw'),
      ...completionObservers('out1'),
    ];
    await helper.load(allNodes, flow);
    const received = collect(helper.getNode('raw-sink'));
    const caught = collect(helper.getNode('caught'));
    await connected();
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    for (const payload of [Buffer.from([1, 2]), 'text', 42, true, { a: [1] }, null, circular])
      helper.getNode('out1').receive({ payload });
    await waitFor(() => received.length === 6 && caught.length === 1, 'six messages and one error');
    assert.deepEqual(
      received.map((m) => (m.payload as Buffer).toString('latin1')),
      ['\u0001\u0002', 'text', '42', 'true', '{"a":[1]}', ''],
    );
    assert.match((caught[0].error as { message: string }).message, /circular/i);
  });

  it('keeps retained messages for later subscribers', async () => {
    const flow = [
      brokerNode(),
      configNode(),
      outNode('out1', { topic: 'state/lamp', retain: 'true', qos: '1' }),
      ...completionObservers('out1'),
    ];
    await helper.load(allNodes, flow);
    const completed = collect(helper.getNode('completed'));
    await connected();
    helper.getNode('out1').receive({ payload: 'on' });
    await waitFor(() => completed.length === 1, 'the retained publish');
    // A second in node added by a partial deploy subscribes later and gets the retained value.
    const later = [...flow, inNode('late', 'state/#'), sink('late')];
    await helper.setFlows(later, 'nodes');
    const received = collect(helper.getNode('late-sink'));
    await waitFor(() => received.length === 1, 'the retained message');
    assert.equal(received[0].payload, 'on');
    assert.equal(received[0].retain, true);
  });

  it('drops nothing silently while disconnected: done(err) for Catch nodes and a drop count in the status', async () => {
    // The config names an embedded broker that does not exist: the connection can never open.
    const flow = [
      configNode({ embedded: 'missing-broker' }),
      outNode('out1', { topic: 't', qos: '1' }),
      ...completionObservers('out1'),
    ];
    await helper.load(allNodes, flow);
    const caught = collect(helper.getNode('caught'));
    const out = helper.getNode('out1');
    const statuses = watchStatus(out);
    await waitFor(
      () => statuses.some((s) => s.text?.includes('the embedded broker node is not running')),
      'a red status with the reason',
    );
    out.receive({ payload: 1 });
    out.receive({ payload: 2 });
    await waitFor(() => caught.length === 2, 'two caught drops');
    assert.match(
      (caught[0].error as { message: string }).message,
      /Not connected to the broker: the message for "t" was not published/,
    );
    await waitFor(() => /2 dropped since \d\d:\d\d$/.test(statuses.at(-1)?.text ?? ''), 'the drop count');
    assert.equal(statuses.at(-1)?.fill, 'red');
  });

  it('stops promptly when the embedded broker stops in the same deploy, even with a QoS 1 close message', async () => {
    // The close message's PUBACK can never come once the broker is gone: closing must not wait for it.
    const withCloseMessage = configNode({ closeTopic: 'bye', closePayload: 'offline', closeQos: '1' });
    for (let deploy = 0; deploy < 2; deploy++) {
      await helper.load(allNodes, [brokerNode(), withCloseMessage, inNode('in1', 't'), sink('in1')]);
      await connected();
      const started = Date.now();
      await helper.unload();
      // Node-RED waits 15 s for a node that does not close; our graceful timeout is 3 s.
      assert.ok(Date.now() - started < 2000, `stopping took ${Date.now() - started} ms`);
    }
  });

  for (const [qos, acknowledgment] of [
    [1, 'puback'],
    [2, 'pubrec'],
  ] as const)
    for (const ack of ['receipt', 'complete'] as const) {
      it(`acknowledges a QoS ${qos} message (${acknowledgment.toUpperCase()}) ${ack === 'complete' ? 'only once the flow has finished with it' : 'on arrival'}, and passes it on once (ack: ${ack}, persistent session)`, async () => {
        let finishedAt = 0;
        let inputs = 0;
        // A downstream node that takes 300 ms before calling done().
        const slowNode = (RED: {
          nodes: { createNode(n: object, c: object): void; registerType(t: string, c: unknown): void };
        }) => {
          RED.nodes.registerType('slow-done', function (this: RuntimeNode, config: object) {
            RED.nodes.createNode(this, config);
            this.on('input', ((_msg: unknown, _send: unknown, done: () => void) => {
              inputs++;
              setTimeout(() => {
                finishedAt = Date.now();
                done();
              }, 300);
            }) as never);
          });
        };
        const flow = [
          brokerNode(),
          // A clean session to the embedded broker has no acknowledgments (in-process link): MQTT carries a persistent one.
          configNode({ cleanSession: false }),
          outNode('out1', { topic: 'work', qos: String(qos) }),
          inNode('in1', 'work', { qos, ack, ackTimeout: 10, wires: [['slow']] }),
          { id: 'slow', type: 'slow-done', wires: [] },
        ];
        await helper.load([...allNodes, slowNode], flow);
        await connected();
        let pubackAt = 0;
        (connectionOf() as unknown as { transport: { client: mqtt.MqttClient } }).transport.client.on(
          'packetsend',
          (packet) => {
            if (packet.cmd === acknowledgment) pubackAt = Date.now();
          },
        );
        helper.getNode('out1').receive({ payload: 'job' });
        await waitFor(() => finishedAt > 0 && pubackAt > 0, `processing and the ${acknowledgment}`);
        if (ack === 'complete')
          assert.ok(
            pubackAt >= finishedAt,
            `${acknowledgment} ${finishedAt - pubackAt} ms before the flow finished`,
          );
        else assert.ok(pubackAt < finishedAt - 200, `${acknowledgment} on arrival`);
        // The QoS 2 handshake completes (PUBREL, PUBCOMP) without a second copy.
        await delay(200);
        assert.equal(inputs, 1, 'copies passed on');
      });
    }

  it('connects as soon as the embedded broker starts, whatever the deploy order', async () => {
    const flow = [
      configNode(),
      inNode('in1', 't'),
      sink('in1'),
      outNode('out1', { topic: 't' }),
      brokerNode(),
    ];
    await helper.load(allNodes, flow);
    await connected();
    const received = collect(helper.getNode('in1-sink'));
    helper.getNode('out1').receive({ payload: 'late broker' });
    await waitFor(() => received.length === 1, 'delivery');
  });
});

describe('broker configs on the embedded broker: a link to its core (clean session) or MQTT (persistent session)', () => {
  before(() => helper.startServer());
  after(() => helper.stopServer());
  afterEach(() => helper.unload());

  type Paths = { transport: { session?: unknown; client?: unknown } };
  const pathsOf = () => helper.getNode(CONFIG) as unknown as { connection: Paths };

  it('takes a clean session through the link and a persistent one over MQTT', async () => {
    await helper.load(allNodes, [brokerNode(), configNode(), inNode('in1', 't'), sink('in1')]);
    await connected();
    assert.ok(pathsOf().connection.transport.session, 'a core session');
    assert.equal(pathsOf().connection.transport.client, undefined, 'no MQTT client');
    await helper.unload();
    await helper.load(allNodes, [
      brokerNode(),
      configNode({ cleanSession: false }),
      inNode('in1', 't'),
      sink('in1'),
    ]);
    await connected();
    assert.equal(pathsOf().connection.transport.session, undefined, 'no core session');
    assert.ok(pathsOf().connection.transport.client, 'an MQTT client');
  });

  for (const cleanSession of [true, false]) {
    const path = cleanSession ? 'through the link' : 'over MQTT in the process';

    it(`exchanges messages with network clients both ways, retained ones included, ${path}`, async () => {
      const port = await freePort();
      const network = await (async () => {
        await helper.load(allNodes, [
          brokerNode(port),
          configNode({ cleanSession }),
          outNode('out1', { topic: 'from-flow/a', qos: '1' }),
        ]);
        return connectWhenListening(port);
      })();
      try {
        await network.publishAsync('to-flow/kept', 'retained', { qos: 1, retain: true });
        const fromFlow: string[] = [];
        network.on('message', (topic, payload) => fromFlow.push(`${topic} ${payload.toString()}`));
        await network.subscribeAsync('from-flow/#', { qos: 1 });
        await connected();
        helper.getNode('out1').receive({ payload: 'hello network' });
        await waitFor(() => fromFlow.length === 1, 'the flow message at the network client');
        assert.deepEqual(fromFlow, ['from-flow/a hello network']);
        // An in node added later gets the retained message, then the live one.
        await helper.setFlows(
          [
            brokerNode(port),
            configNode({ cleanSession }),
            outNode('out1', { topic: 'from-flow/a', qos: '1' }),
            inNode('in1', 'to-flow/#', { datatype: 'utf8' }),
            sink('in1'),
          ],
          'nodes',
        );
        const received = collect(helper.getNode('in1-sink'));
        await waitFor(() => received.length === 1, 'the retained message');
        await network.publishAsync('to-flow/live', 'live', { qos: 1 });
        await waitFor(() => received.length === 2, 'the live message');
        assert.deepEqual(
          received.map((msg) => [msg.topic, msg.payload, msg.retain]),
          [
            ['to-flow/kept', 'retained', true],
            ['to-flow/live', 'live', false],
          ],
        );
      } finally {
        await network.endAsync();
      }
    });

    it(`keeps the broker's $SYS topics from a filter starting with a wildcard, ${path}`, async () => {
      const port = await freePort();
      await helper.load(allNodes, [
        brokerNode(port),
        configNode({ cleanSession }),
        outNode('out1', { topic: 'plain/topic' }),
        inNode('all', '#', { datatype: 'utf8' }),
        sink('all'),
      ]);
      const received = collect(helper.getNode('all-sink'));
      await connected();
      await waitFor(() => pathsOf().connection !== undefined, 'the connection');
      // Aedes publishes $SYS/<id>/new/clients for this client, and its heartbeat under $SYS.
      const network = await connectWhenListening(port);
      await network.endAsync();
      helper.getNode('out1').receive({ payload: 'visible' });
      await waitFor(() => received.length >= 1, 'the plain message');
      await delay(200);
      assert.deepEqual(
        received.map((msg) => msg.topic),
        ['plain/topic'],
      );
    });
  }

  it('grants the highest QoS among the matching filters of a config, never more than published (link)', async () => {
    await helper.load(allNodes, [
      brokerNode(),
      configNode(),
      outNode('out1', { topic: 'g/x' }),
      inNode('low', 'g/+', { qos: 0 }),
      inNode('high', 'g/#', { qos: 1 }),
      inNode('other', 'h/#', { qos: 0 }),
      sink('low'),
      sink('high'),
      sink('other'),
    ]);
    const low = collect(helper.getNode('low-sink'));
    const high = collect(helper.getNode('high-sink'));
    await connected();
    await waitFor(() => connectionOf().brokerSubscriptions().size === 3, 'three subscriptions');
    helper.getNode('out1').receive({ payload: 'a', qos: 2 });
    helper.getNode('out1').receive({ payload: 'b', qos: 0 });
    await waitFor(() => low.length === 2 && high.length === 2, 'both messages at both nodes');
    await delay(100);
    // MQTT orders messages of one QoS; at QoS 0 the broker hands a message over before a QoS 2 one it stores first.
    const byPayload = (a: { payload?: unknown }, b: { payload?: unknown }) =>
      String(a.payload).localeCompare(String(b.payload));
    assert.deepEqual(
      low.sort(byPayload).map((msg) => [msg.payload, msg.qos]),
      [
        ['a', 1],
        ['b', 0],
      ],
    );
    assert.deepEqual(
      high.sort(byPayload).map((msg) => [msg.payload, msg.qos]),
      [
        ['a', 1],
        ['b', 0],
      ],
    );
  });

  it('loses the link when the embedded broker stops alone and links again when it is back, counted as a client', async () => {
    const port = await freePort();
    const flow = (maxConnections: number) => [
      brokerNode(port, { maxConnections }),
      configNode(),
      outNode('out1', { topic: 'back/t' }),
      inNode('in1', 'back/#'),
      sink('in1'),
    ];
    await helper.load(allNodes, flow(100));
    await connected();
    // Only the broker restarts: its own settings changed.
    await helper.setFlows(flow(99), 'nodes');
    const statuses = watchStatus(helper.getNode(BROKER));
    await waitFor(() => connectionOf().connected, 'the link back');
    const received = collect(helper.getNode('in1-sink'));
    helper.getNode('out1').receive({ payload: 'after' });
    await waitFor(() => received.length === 1, 'delivery after the broker came back');
    assert.equal(received[0].payload, 'after');
    const network = await connectWhenListening(port);
    try {
      await waitFor(
        () => statuses.at(-1)?.text?.endsWith('2 client(s)') === true,
        'the link and the network client counted',
      );
    } finally {
      await network.endAsync();
    }
  });
});

describe('embedded broker listener', () => {
  before(() => helper.startServer());
  after(() => helper.stopServer());
  afterEach(() => helper.unload());

  it('serves TCP clients and frees its port on redeploy (no EADDRINUSE)', async () => {
    const port = await freePort();
    const flow = [brokerNode(port)];
    for (let deploy = 0; deploy < 3; deploy++) {
      const errors: unknown[] = [];
      // unload stops the flows and closes every node, as a full redeploy does.
      if (deploy > 0) await helper.unload();
      await helper.load(allNodes, flow);
      const node = helper.getNode(BROKER);
      node.on('call:error', ((call: { args: unknown[] }) => errors.push(call.args[0])) as never);
      const client = await connectWhenListening(port);
      await client.endAsync();
      assert.deepEqual(errors, [], `deploy ${deploy} started without error`);
    }
  });

  it('shows a clear error when its port is in use, and still serves in-process clients', async () => {
    const blocker = net.createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    try {
      const flow = [
        brokerNode(port),
        configNode(),
        outNode('out1', { topic: 't' }),
        inNode('in1', 't'),
        sink('in1'),
      ];
      await helper.load(allNodes, flow);
      const statuses = watchStatus(helper.getNode(BROKER));
      await waitFor(() => statuses.some((s) => s.fill === 'red'), 'a red status');
      assert.equal(
        statuses.find((s) => s.fill === 'red')?.text,
        translate('durable-mqtt.errors.port-in-use', { port, bind: '127.0.0.1' }),
      );
      await connected();
      const received = collect(helper.getNode('in1-sink'));
      helper.getNode('out1').receive({ payload: 'in-process' });
      await waitFor(() => received.length === 1, 'in-process delivery');
    } finally {
      blocker.close();
    }
  });

  it('serves MQTT over WebSocket on a path of the Node-RED HTTP server, for outside clients and ws broker configs', async () => {
    const url = new URL((helper as unknown as { url(): string }).url());
    const broker = brokerNode(0, { wsPath: '/mqtt-ws' });
    await helper.load(allNodes, [broker]);
    // Until the broker has started, nobody answers an upgrade on its path: wait for it as a client would.
    const outside = await connectWhenListening(`ws://${url.host}/mqtt-ws`);
    try {
      const wsConfig = configNode({ transport: 'ws', host: url.hostname, port: url.port, path: '/mqtt-ws' });
      const flow = [
        broker,
        wsConfig,
        outNode('out1', { topic: 'ws/t', qos: '1' }),
        inNode('in1', 'ws/#'),
        sink('in1'),
      ];
      await helper.setFlows(flow, 'nodes');
      const received = collect(helper.getNode('in1-sink'));
      await connected();
      const seen: string[] = [];
      outside.on('message', (_topic, payload) => seen.push(payload.toString()));
      await outside.subscribeAsync('ws/#', { qos: 1 });
      helper.getNode('out1').receive({ payload: 'from the flow' });
      await outside.publishAsync('ws/t', 'from outside', { qos: 1 });
      await waitFor(() => received.length === 2 && seen.length === 2, 'both messages on both sides');
      assert.deepEqual(received.map((m) => m.payload).sort(), ['from outside', 'from the flow']);
      assert.deepEqual(seen.sort(), ['from outside', 'from the flow']);
    } finally {
      await outside.endAsync(true);
    }
  });

  it('runs in-process only when its port is 0 or empty', async () => {
    for (const port of [0, '']) {
      await helper.load(allNodes, [
        brokerNode(0, { port }),
        configNode(),
        outNode('out1', { topic: 't' }),
        inNode('in1', 't'),
        sink('in1'),
      ]);
      const statuses = watchStatus(helper.getNode(BROKER));
      await connected();
      const received = collect(helper.getNode('in1-sink'));
      helper.getNode('out1').receive({ payload: 'in-process' });
      await waitFor(() => received.length === 1, 'in-process delivery');
      await waitFor(
        () => statuses.some((s) => s.text?.startsWith('in-process only')),
        'the in-process status',
      );
      await helper.unload();
    }
  });

  it('shows a subscription the broker refuses (SUBACK 0x80) in red on the node concerned and in the log', async () => {
    // A bare Aedes on TCP that refuses one filter: the embedded broker node has no ACL to do it.
    const { Aedes } = await import('aedes');
    const aedes = await Aedes.createBroker({
      // A null subscription is Aedes' way to answer SUBACK 0x80 (an error would drop the connection).
      authorizeSubscribe: (_client, subscription, callback) =>
        callback(null, subscription.topic.startsWith('secret/') ? null : subscription),
    });
    const server = net.createServer(aedes.handle);
    const port = await freePort();
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    try {
      const tcpConfig = configNode({ transport: 'mqtt', host: '127.0.0.1', port });
      await helper.load(allNodes, [
        tcpConfig,
        inNode('ok', 'allowed/#'),
        inNode('denied', 'secret/#'),
        sink('ok'),
        sink('denied'),
      ]);
      const statuses = watchStatus(helper.getNode('denied'));
      const logged: string[] = [];
      helper
        .getNode(CONFIG)
        .on('call:error', ((call: { args: [string] }) => logged.push(call.args[0])) as never);
      await waitFor(() => statuses.some((s) => s.fill === 'red'), 'a red status on the refused node');
      assert.deepEqual(
        statuses.find((s) => s.fill === 'red'),
        { fill: 'red', shape: 'ring', text: 'subscription refused: secret/#' },
      );
      await waitFor(() => logged.length > 0, 'an error in the log');
      assert.equal(logged[0], 'The broker refused the subscription to "secret/#" (code 128)');
      assert.deepEqual([...connectionOf().brokerSubscriptions().keys()], ['allowed/#']);
    } finally {
      await helper.unload();
      server.close();
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
    }
  });

  it('keeps retained messages and a persistent session queue across a restart with persistence: disk', async () => {
    helper.settings({ userDir: temporaryDirectory('durable-mqtt-broker-disk-') });
    const port = await freePort();
    const flow = [brokerNode(port, { persistence: 'disk' })];
    await helper.load(allNodes, flow);
    const options = {
      protocolVersion: 4 as const,
      clientId: 'sleepy-sensor',
      clean: false,
      reconnectPeriod: 0,
    };
    const sleepy = await connectWhenListening(port, options);
    await sleepy.subscribeAsync('cmd/#', { qos: 1 });
    await sleepy.endAsync();
    const controller = await connectWhenListening(port);
    await controller.publishAsync('state/door', 'closed', { qos: 1, retain: true });
    await controller.publishAsync('cmd/light', 'on', { qos: 1 });
    await controller.endAsync();

    await helper.unload(); // the broker stops: what it holds must be on disk
    await helper.load(allNodes, flow);
    await (await connectWhenListening(port)).endAsync();
    // Listening before the CONNACK: the queued message may come in the same read as it.
    const woken = mqtt.connect({ ...options, host: '127.0.0.1', port });
    const received: string[] = [];
    woken.on('message', (topic, payload) => received.push(`${topic}=${payload}`));
    await new Promise((resolve, reject) => woken.once('connect', resolve).once('error', reject));
    await waitFor(() => received.includes('cmd/light=on'), 'the message queued while the client slept');
    await woken.subscribeAsync('state/#', { qos: 1 });
    await waitFor(() => received.includes('state/door=closed'), 'the retained message');
    await woken.endAsync();
  });

  it('refuses bad credentials with CONNACK 4 and shows the reason in red on the nodes', async () => {
    const flow = [brokerNode(), configNode(), inNode('in1', 't'), sink('in1')];
    await helper.load(allNodes, flow, {
      [BROKER]: { user: 'alice', password: 'right' },
      [CONFIG]: { user: 'alice', password: 'wrong' },
    });
    const statuses = watchStatus(helper.getNode('in1'));
    await waitFor(() => statuses.some((s) => s.text?.includes('refused')), 'a refusal in the status');
    assert.deepEqual(
      statuses.find((s) => s.text?.includes('refused')),
      {
        fill: 'red',
        shape: 'ring',
        text: 'disconnected: refused by the broker: bad user name or password (code 4)',
      },
    );
    assert.equal(
      statuses.filter((s) => s.fill === 'red').length,
      statuses.filter((s) => s.text?.includes('refused')).length,
      'no other red status before',
    );
  });

  it('accepts the right credentials', async () => {
    const flow = [
      brokerNode(),
      configNode(),
      outNode('out1', { topic: 't' }),
      inNode('in1', 't'),
      sink('in1'),
    ];
    await helper.load(allNodes, flow, {
      [BROKER]: { user: 'alice', password: 'right' },
      [CONFIG]: { user: 'alice', password: 'right' },
    });
    await connected();
    const received = collect(helper.getNode('in1-sink'));
    helper.getNode('out1').receive({ payload: 'authenticated' });
    await waitFor(() => received.length === 1, 'delivery');
  });
});
