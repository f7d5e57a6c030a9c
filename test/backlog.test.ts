import assert from 'node:assert/strict';
import { after, before, describe, it } from 'mocha';
import { allNodes, collect, completionObservers, helper } from './support/node-red.js';
import { brokerConfigNode, helperNode, mqttInNode, mqttOutNode } from './support/flows.js';
import { temporaryDirectory } from './support/node-red-process.js';
import { Mosquitto, mosquittoBinary } from './support/mosquitto.js';
import { freePort } from './support/ports.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { skipUnlessInstalled } from './support/services.js';
import { delay, waitFor } from './support/wait.js';

const BACKLOG = 50_000;

describe('draining a backlog', () => {
  before(function () {
    skipUnlessInstalled(this, 'mosquitto', mosquittoBinary);
  });
  // Mosquitto with its default limits: 20 messages in flight and 1,000 queued per subscriber.
  const broker = new Mosquitto();

  before(async () => {
    helper.settings({ userDir: temporaryDirectory('durable-mqtt-backlog-') });
    await helper.startServer();
  });
  after(async () => {
    await helper.unload();
    await helper.stopServer();
    await broker.dispose();
  });

  it(`delivers ${BACKLOG.toLocaleString('en-US')} QoS 1 messages queued during an outage, none dropped by the broker`, async () => {
    await broker.start();
    // The publisher reaches the broker through a proxy: cutting it is an outage for the publisher alone,
    // so the subscriber is surely subscribed when the backlog drains (what is published to a topic
    // nobody has subscribed to yet goes to nobody, by MQTT's rules).
    const proxy = new TcpProxy(await freePort(), broker.port);
    const publisher = [
      brokerConfigNode({ id: 'pub-cfg', port: proxy.port, clientId: 'durable-backlog-pub', keepalive: 30 }),
      mqttOutNode({
        id: 'out',
        broker: 'pub-cfg',
        topic: 'backlog/n',
        qos: '1',
        retain: 'false',
        persistence: 'queued',
        maxMessages: 100_000,
      }),
      ...completionObservers('out'),
    ];
    // The subscriber is a flow of the same Node-RED, sharing its CPU with the publisher, as users run it.
    const subscriber = [
      brokerConfigNode({ id: 'sub-cfg', port: broker.port, clientId: 'durable-backlog-sub', keepalive: 30 }),
      mqttInNode({
        id: 'in',
        broker: 'sub-cfg',
        topic: 'backlog/#',
        datatype: 'json',
        wires: [['received']],
      }),
      helperNode('received'),
    ];
    await helper.load(allNodes, [...publisher, ...subscriber]);
    const completed = collect(helper.getNode('completed'));
    const received = collect(helper.getNode('received'));
    const out = helper.getNode('out');
    for (let n = 1; n <= BACKLOG; n++) out.receive({ payload: { n } });
    await waitFor(
      () => completed.length === BACKLOG,
      'every message on disk while the broker is out of reach',
      120_000,
    );
    const subscriberConnection = (
      helper.getNode('sub-cfg') as unknown as { connection: { brokerSubscriptions(): Map<string, number> } }
    ).connection;
    await waitFor(() => subscriberConnection.brokerSubscriptions().size === 1, 'the subscription');
    await delay(200); // its SUBACK

    await proxy.open();
    const count = () => {
      const seen = new Set(received.map((msg) => (msg.payload as { n: number }).n));
      return { delivered: seen.size, missing: BACKLOG - seen.size, duplicates: received.length - seen.size };
    };
    await waitFor(() => count().missing === 0, 'the whole backlog', 180_000).catch(() => undefined);
    await proxy.cut();
    const { delivered, missing, duplicates } = count();
    console.log(
      `\nbacklog: accepted ${BACKLOG}  delivered ${delivered}  missing ${missing}  duplicates ${duplicates}`,
    );
    assert.equal(missing, 0, 'messages dropped on the way');
  });
});
