/**
 * The broker config's keep-alive [MQTT-3.1.2-23], over TCP to the real embedded broker through a
 * proxy that sees every byte the client sends and can stop the broker's answers: a PINGREQ once the
 * connection has been quiet for the keep-alive, none while packets come, and a broker that stops
 * answering noticed. The timer behind it is nodes/lib/connection/keep-alive-timer.ts.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'mocha';
import { keepAliveTimer } from '../nodes/lib/connection/keep-alive-timer.js';
import { allNodes, helper, loggedLines, watchStatus } from './support/node-red.js';
import { brokerConfigNode, embeddedBrokerNode, mqttInNode, mqttOutNode } from './support/flows.js';
import { freePort } from './support/ports.js';
import { TcpProxy, type Wiring } from './support/tcp-proxy.js';
import { delay, waitFor } from './support/wait.js';

const PINGREQ = Buffer.from([0xc0, 0x00]);
const CONFIG = 'c00000000000000ka';
const KEEP_ALIVE_SECONDS = 1;

describe('broker config keep-alive over TCP', () => {
  let proxy: TcpProxy;
  /** When each PINGREQ of the client reached the proxy. */
  let pings: number[];
  /** Set to stop passing the broker's bytes on to the client. */
  let silenced: boolean;
  const seeEveryByte: Wiring = (client, upstream) => {
    client.on('data', (chunk: Buffer) => {
      if (chunk.equals(PINGREQ)) pings.push(Date.now());
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!silenced) client.write(chunk);
    });
  };

  before(() => helper.startServer());
  after(() => helper.stopServer());
  beforeEach(() => {
    pings = [];
    silenced = false;
  });
  afterEach(async () => {
    await helper.unload();
    await proxy.cut();
  });

  /** Deploys the embedded broker on TCP and an in and an out node on a config reaching it through the proxy. */
  async function deploy() {
    const brokerPort = await freePort();
    proxy = new TcpProxy(await freePort(), brokerPort, seeEveryByte);
    await proxy.open();
    await helper.load(allNodes, [
      embeddedBrokerNode(brokerPort),
      brokerConfigNode({
        id: CONFIG,
        clientId: 'keep-alive',
        port: proxy.port,
        keepalive: KEEP_ALIVE_SECONDS,
      }),
      mqttInNode({ id: 'in1', broker: CONFIG, topic: 'keep-alive/t' }),
      // At QoS 1: MQTT.js counts a PUBACK as a sign of life, not a PUBLISH it receives nor one it sends.
      mqttOutNode({ id: 'out1', broker: CONFIG, topic: 'keep-alive/t', qos: '1' }),
    ]);
    const statuses = watchStatus(helper.getNode('out1'));
    await waitFor(() => statuses.at(-1)?.text?.startsWith('connected') === true, 'connected');
    return statuses;
  }

  it('sends PINGREQ once the connection has been quiet for the keep-alive, and none while messages come', async () => {
    await deploy();
    // A message every 200 ms, each acknowledged: never quiet for 1 s.
    const busyFrom = Date.now();
    for (let sent = 0; sent < 15; sent++) {
      helper.getNode('out1').receive({ payload: sent });
      await delay(200);
    }
    const busyUntil = Date.now();
    assert.deepEqual(
      pings.filter((at) => at >= busyFrom && at <= busyUntil),
      [],
      'no PINGREQ while messages came',
    );
    await waitFor(() => pings.length >= 2, 'two PINGREQs once quiet', 5_000);
    // Never before the keep-alive has passed since the last packet (timers may fire a millisecond early).
    assert.ok(
      pings[0] - busyUntil >= KEEP_ALIVE_SECONDS * 1000 - 250,
      `first ${pings[0] - busyUntil} ms after`,
    );
    assert.ok(pings[1] - pings[0] >= KEEP_ALIVE_SECONDS * 1000 - 5, `then ${pings[1] - pings[0]} ms apart`);
  });

  it('notices a broker that stops answering, and says so', async () => {
    const statuses = await deploy();
    silenced = true;
    const silencedAt = Date.now();
    await waitFor(
      () => statuses.at(-1)?.text?.startsWith('connected') === false,
      'the connection given up',
      6_000,
    );
    const noticedAfter = Date.now() - silencedAt;
    assert.ok(noticedAfter >= KEEP_ALIVE_SECONDS * 1000, `given up ${noticedAfter} ms after the silence`);
    assert.ok(
      statuses.some((status) => status.text === 'disconnected: Keepalive timeout'),
      'the cause in the status',
    );
    // In the debug sidebar, against a node that uses the config.
    await waitFor(
      () =>
        loggedLines('error').some(
          (line) => line.startsWith('Disconnected from broker') && line.endsWith('Keepalive timeout'),
        ),
      'the cause logged',
    );
  });
});

describe('the keep-alive timer', () => {
  it('ticks every interval like setInterval, never early', async () => {
    const timer = keepAliveTimer();
    const ticks: number[] = [];
    const setAt = Date.now();
    const id = timer.set(() => ticks.push(Date.now()), 40);
    await waitFor(() => ticks.length >= 3, 'three ticks');
    timer.clear(id);
    ticks.forEach((at, index) =>
      assert.ok(at - setAt >= (index + 1) * 40 - 1, `tick ${index + 1} at ${at - setAt} ms`),
    );
  });

  it('moves the next tick to an interval after the last set, as clearInterval and setInterval would', async () => {
    const timer = keepAliveTimer();
    const ticks: number[] = [];
    let id = timer.set(() => ticks.push(Date.now()), 60);
    // Reset every 20 ms for 300 ms, as MQTT.js does on each packet it receives.
    for (let resets = 0; resets < 15; resets++) {
      await delay(20);
      timer.clear(id);
      id = timer.set(() => ticks.push(Date.now()), 60);
    }
    const lastSetAt = Date.now();
    assert.deepEqual(ticks, [], 'no tick while reset');
    await waitFor(() => ticks.length === 1, 'the tick after the resets stop');
    assert.ok(ticks[0] - lastSetAt >= 59, `tick ${ticks[0] - lastSetAt} ms after the last set`);
    timer.clear(id);
  });

  it('ticks no more once cleared, and takes a shorter interval at once', async () => {
    const timer = keepAliveTimer();
    let clearedTicks = 0;
    const id = timer.set(() => clearedTicks++, 1_000);
    timer.clear(id);
    const ticks: number[] = [];
    const setAt = Date.now();
    const shorter = timer.set(() => ticks.push(Date.now()), 10);
    await waitFor(() => ticks.length >= 1, 'the shorter tick');
    timer.clear(shorter);
    const ticksAtClear = ticks.length;
    assert.ok(ticks[0] - setAt < 1_000, `the shorter interval ticked after ${ticks[0] - setAt} ms`);
    await delay(1_200);
    assert.equal(clearedTicks, 0, 'the cleared schedule never ticked');
    assert.equal(ticks.length, ticksAtClear, 'no tick after the clear');
  });
});
