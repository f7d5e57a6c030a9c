import assert from 'node:assert/strict';
import { after, before, describe, it } from 'mocha';
import path from 'node:path';
import { Mosquitto, mosquittoBinary } from './support/mosquitto.js';
import { NodeRedRig, NumberedSubscriber, postNumbers, waitFor } from './support/crash-rig.js';
import { skipUnlessInstalled } from './support/services.js';
import { delay } from './support/wait.js';
import { LevelOutboxStore } from '../nodes/lib/outbox/level-store.js';
import { freePort, isListening } from './support/ports.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { brokerConfigNode, embeddedBrokerNode, mqttOutNode } from './support/flows.js';

const MODES = ['queued', 'acknowledged'] as const;
/** Numbered messages per mode. */
const TOTAL = 5000;

/**
 * For each mode: POST /publish/<mode> → durable mqtt out → the broker. The HTTP
 * answer comes from a Complete node, so 200 means the node completed the
 * message: on disk (queued) or acknowledged by the broker (acknowledged).
 */
function publisherFlow(brokerPort: number, scenario: string): unknown[] {
  const flow: Record<string, unknown>[] = [
    { id: 'tab1', type: 'tab', label: 'crash test' },
    brokerConfigNode({ id: 'cfg1', port: brokerPort, clientId: 'durable-crash-publisher', keepalive: 10 }),
  ];
  for (const mode of MODES) {
    flow.push(
      {
        id: `http-${mode}`,
        type: 'http in',
        z: 'tab1',
        url: `/publish/${mode}`,
        method: 'post',
        wires: [[`out-${mode}`]],
      },
      mqttOutNode({
        id: `out-${mode}`,
        z: 'tab1',
        broker: 'cfg1',
        topic: `crash/${scenario}/${mode}`,
        qos: '1',
        retain: 'false',
        persistence: mode,
        outputs: mode === 'acknowledged' ? 1 : 0,
        wires: mode === 'acknowledged' ? [[]] : [],
      }),
      {
        id: `complete-${mode}`,
        type: 'complete',
        z: 'tab1',
        scope: [`out-${mode}`],
        uncaught: false,
        wires: [[`reply-${mode}`]],
      },
      { id: `reply-${mode}`, type: 'http response', z: 'tab1', statusCode: '', headers: {}, wires: [] },
    );
  }
  return flow;
}

/** A Node-RED whose only job is an embedded broker that keeps its sessions and queues on disk. */
function brokerFlow(port: number): unknown[] {
  return [
    { id: 'tab1', type: 'tab', label: 'broker' },
    embeddedBrokerNode(port, { id: 'broker1', z: 'tab1', persistence: 'disk' }),
  ];
}

/** What each out node's outbox still holds, read from disk once Node-RED has stopped. */
async function leftInOutboxes(rig: NodeRedRig): Promise<Record<string, number>> {
  await rig.stop();
  const left: Record<string, number> = {};
  for (const mode of MODES) {
    const store = new LevelOutboxStore(path.join(rig.userDir, 'durable-mqtt', 'outbox', `out-${mode}`));
    left[mode] = (await store.open()).meta.count;
    await store.close();
  }
  return left;
}

/**
 * Posts TOTAL numbers per mode to the publisher while `disrupt` runs (it returns how many
 * times it disrupted), waits for the subscriber to have them all, prints the counts and
 * asserts 0 missing and empty outboxes.
 */
async function publishThrough(
  title: (disruptions: number) => string,
  publisher: NodeRedRig,
  scenario: string,
  subscriber: NumberedSubscriber,
  disrupt: (publishing: () => boolean) => Promise<number>,
): Promise<void> {
  let publishing = true;
  const disruptions = disrupt(() => publishing);
  const accepted = await Promise.all(
    MODES.map((mode) =>
      postNumbers(
        () => `${publisher.url}/publish/${mode}`,
        TOTAL,
        8,
        () => false,
      ),
    ),
  );
  publishing = false;
  const count = await disruptions;
  const counts = () =>
    Object.fromEntries(
      MODES.map((mode, i) => [mode, subscriber.count(`crash/${scenario}/${mode}`, accepted[i])]),
    );
  await waitFor(
    () => Object.values(counts()).every((c) => c.missing.length === 0),
    'every accepted message',
    60_000,
  ).catch(() => undefined);
  const left = await leftInOutboxes(publisher);
  console.log(`\n${title(count)} (${publisher.starts} starts of the publishing Node-RED)`);
  // Missing messages with an empty outbox were acknowledged by the broker: lost after the package.
  console.log(`  left in the outboxes: ${JSON.stringify(left)}`);
  for (const [mode, c] of Object.entries(counts())) {
    console.log(
      `  ${mode.padEnd(13)} accepted ${c.accepted}  delivered ${c.delivered}  missing ${c.missing.length}  duplicates ${c.duplicates}`,
    );
  }
  assert.ok(count >= 1, 'disrupted at least once while publishing');
  assert.deepEqual(left, { queued: 0, acknowledged: 0 }, 'accepted messages still in the outboxes');
  for (const [mode, c] of Object.entries(counts())) {
    assert.equal(c.accepted, TOTAL, `${mode}: every number was accepted in the end`);
    assert.deepEqual(c.missing.slice(0, 10), [], `${mode}: accepted messages missing`);
  }
}

/** Runs `disruption` up to `times` times at random moments while publishing goes on. */
async function atRandomMoments(
  publishing: () => boolean,
  times: number,
  disruption: (round: number) => Promise<void>,
): Promise<number> {
  let done = 0;
  while (publishing() && done < times) {
    await delay(1000 + Math.random() * 1500);
    if (!publishing()) break;
    await disruption(done);
    done++;
  }
  return done;
}

describe('durability with real processes, Mosquitto', () => {
  before(function () {
    skipUnlessInstalled(this, 'mosquitto', mosquittoBinary);
  });
  // Unlimited queues: after an outage the publisher may drain its backlog before the test's subscriber is
  // back, and Mosquitto's default bound (1,000 queued per client) would drop what this test must count.
  const broker = new Mosquitto({ persistence: true, unlimitedQueues: true });
  const subscriber = new NumberedSubscriber();
  let link: TcpProxy | undefined;
  let rig: NodeRedRig | undefined;

  before(async () => {
    await broker.start();
    // A persistent session: what the broker acknowledged reaches the test even across a broker restart.
    await subscriber.connect(broker.port, 'crash/#', {
      clientId: 'durable-crash-subscriber',
      clean: false,
    });
    // Node-RED reaches Mosquitto through a proxy: cutting it is an outage for Node-RED alone.
    link = new TcpProxy(await freePort(), broker.port);
    await link.open();
  });
  after(async () => {
    await rig?.stop().catch(() => rig?.process?.kill());
    // A listening proxy would keep this test process alive after its tests.
    await link?.cut();
    await subscriber.close();
    await broker.dispose();
  });

  it(`loses no accepted message while Node-RED is SIGKILLed at random points, some during outages (${TOTAL} per mode)`, async () => {
    const proxy = link as TcpProxy;
    rig = new NodeRedRig(publisherFlow(proxy.port, 'kill'));
    const publisher = rig;
    await publisher.start();
    // Kills land sometimes with the broker reachable, sometimes during an outage, when accepted
    // messages exist only in the outbox on disk: the case a durable outbox is for.
    await publishThrough(
      (kills) => `Node-RED SIGKILLed ${kills} times`,
      publisher,
      'kill',
      subscriber,
      (publishing) =>
        atRandomMoments(publishing, 4, async (round) => {
          const outage = round % 2 === 0;
          if (outage) await proxy.cut();
          await delay(500 + Math.random() * 1000);
          await publisher.crash();
          await publisher.start();
          if (outage) await proxy.open();
        }),
    );
  });

  it(`loses no accepted message while Mosquitto is stopped and restarted (${TOTAL} per mode)`, async () => {
    const proxy = link as TcpProxy;
    rig = new NodeRedRig(publisherFlow(proxy.port, 'restart'));
    const publisher = rig;
    await publisher.start();
    await publishThrough(
      (restarts) => `Mosquitto restarted ${restarts} times`,
      publisher,
      'restart',
      subscriber,
      (publishing) =>
        atRandomMoments(publishing, 3, async () => {
          // Node-RED loses the broker first and the subscriber leaves (its session queues), then Mosquitto
          // restarts. Mosquitto 2.0.11 acknowledges PUBLISH packets it reads while it is terminating on
          // SIGTERM and never delivers them (its log shows "Sending PUBACK" right before "terminating"), and
          // it once lost hundreds of messages in flight to a connected subscriber across a restart; plain
          // MQTT.js clients lose them the same way. With nothing in flight at the restart, those faults of
          // the broker's stay out of this test, which then counts what the package answers for end to end.
          await proxy.cut();
          await subscriber.leave();
          await delay(200);
          await broker.stop('SIGTERM');
          await delay(300 + Math.random() * 1000);
          await broker.start();
          subscriber.comeBack();
          await proxy.open();
        }),
    );
  });
});

describe('durability with real processes, an embedded broker with persistence on disk', () => {
  const subscriber = new NumberedSubscriber();
  let brokerRig: NodeRedRig | undefined;
  let publisher: NodeRedRig | undefined;

  after(async () => {
    await publisher?.stop().catch(() => publisher?.process?.kill());
    await subscriber.close();
    await brokerRig?.stop().catch(() => brokerRig?.process?.kill());
  });

  it(`loses no accepted message while the broker's Node-RED is stopped and restarted (${TOTAL} per mode)`, async () => {
    const brokerPort = await freePort();
    const brokerNodeRed = new NodeRedRig(brokerFlow(brokerPort));
    brokerRig = brokerNodeRed;
    const startBroker = async () => {
      await brokerNodeRed.start();
      await waitFor(() => isListening(brokerPort), 'the embedded broker to listen', 30_000);
    };
    await startBroker();
    // The persistent session lives in the embedded broker's LevelDB: it must outlive each restart.
    await subscriber.connect(brokerPort, 'crash/#', { clientId: 'durable-crash-subscriber', clean: false });
    const rig = new NodeRedRig(publisherFlow(brokerPort, 'embedded'));
    publisher = rig;
    await rig.start();
    await publishThrough(
      (restarts) => `the embedded broker's Node-RED stopped and restarted ${restarts} times`,
      rig,
      'embedded',
      subscriber,
      (publishing) =>
        atRandomMoments(publishing, 3, async () => {
          await brokerNodeRed.stop();
          await delay(300 + Math.random() * 1000);
          await startBroker();
        }),
    );
  });
});
