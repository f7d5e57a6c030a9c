/**
 * A hostile mix thrown at the embedded broker of a real Node-RED process, on
 * the loopback and bounded in time: over 10,000 malformed or truncated MQTT 3.1.1 and 5
 * packets, oversize packets, slow-loris connections and a connection flood,
 * while an honest client publishes and subscribes throughout. The honest
 * client must lose nothing and stay connected, Node-RED must keep serving, and
 * its memory must come back to its level before the attack.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import { after, before, describe, it } from 'mocha';
import mqtt from 'mqtt';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { NodeRedRig } from './support/crash-rig.js';
import { embeddedBrokerNode } from './support/flows.js';
import { connect, packet, publish, subscribe, uint16, unsubscribe } from './support/raw-mqtt.js';
import { freePort } from './support/ports.js';
import { delay, waitFor } from './support/wait.js';

const BROKER = 'b0000000000f0zz1';
const MALFORMED_PACKETS = 12_000;
const MAX_CONNECTIONS = 300;
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);

/** A small seeded generator, so that a failing run can be replayed with FUZZ_SEED. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A packet as MQTT 5 writes it. */
function v5(packet: Packet): Buffer {
  return mqttPacket.generate(packet, { protocolVersion: 5 });
}

function v5Connect(clientId: string): Buffer {
  return v5({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clientId, clean: true, keepalive: 30 });
}

const userProperties = { a: '1', b: ['2', '3'] };

/** Valid MQTT 5 packets of every kind a client sends, properties included, to mutate after an MQTT 5 CONNECT. */
const V5_TEMPLATES = [
  v5({
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 5,
    clientId: 'fuzz5',
    clean: false,
    keepalive: 5,
    properties: { sessionExpiryInterval: 30, receiveMaximum: 5, userProperties },
    will: {
      topic: 'w/5',
      payload: Buffer.from('x'),
      qos: 1,
      retain: false,
      properties: { willDelayInterval: 1 },
    },
  }),
  v5({
    cmd: 'publish',
    topic: 'fuzz/5',
    payload: Buffer.from('p'),
    qos: 1,
    messageId: 20,
    dup: false,
    retain: false,
    properties: {
      messageExpiryInterval: 60,
      contentType: 'text/plain',
      correlationData: Buffer.from([1]),
      userProperties,
    },
  }),
  v5({
    cmd: 'subscribe',
    messageId: 21,
    properties: { subscriptionIdentifier: 3 },
    subscriptions: [{ topic: 'fuzz/#', qos: 1, nl: true, rap: true, rh: 1 }],
  }),
  v5({ cmd: 'unsubscribe', messageId: 22, unsubscriptions: ['fuzz/#'], properties: { userProperties } }),
  v5({ cmd: 'puback', messageId: 20, reasonCode: 0x10, properties: { reasonString: 'none' } }),
  v5({ cmd: 'disconnect', reasonCode: 0x04, properties: { sessionExpiryInterval: 0 } }),
];

/** Valid packets of every kind a client sends, to mutate. */
const TEMPLATES = [
  connect({ clientId: 'fuzz', will: { topic: 'w/t', qos: 1 }, username: 'u', password: 'p' }),
  connect({ clientId: 'fuzz', clean: false, keepalive: 5 }),
  publish('fuzz/a', { qos: 0 }),
  publish('fuzz/b', { qos: 1, packetId: 10, payload: Buffer.alloc(40, 7) }),
  publish('fuzz/c', { qos: 2, packetId: 11 }),
  subscribe(12, [
    ['fuzz/#', 1],
    ['+/x', 2],
  ]),
  unsubscribe(13, ['fuzz/#']),
  packet(0x40, uint16(10)),
  packet(0x50, uint16(11)),
  packet(0x62, uint16(11)),
  packet(0x70, uint16(11)),
  packet(0xc0),
];

/**
 * A packet made wrong one of several ways: truncated, bytes changed, length lied about, or noise; with
 * the protocol level of the CONNECT to send before it (MQTT 5 for one made from an MQTT 5 packet).
 */
function malformed(next: () => number): { bytes: Buffer; level: 4 | 5 } {
  const pick = (n: number) => Math.floor(next() * n);
  const v5Template = next() < 0.3;
  const templates = v5Template ? V5_TEMPLATES : TEMPLATES;
  return { bytes: mutated(Buffer.from(templates[pick(templates.length)]), pick), level: v5Template ? 5 : 4 };
}

function mutated(template: Buffer, pick: (n: number) => number): Buffer {
  switch (pick(5)) {
    case 0:
      return template.subarray(0, 1 + pick(template.length - 1));
    case 1: {
      for (let flips = 1 + pick(4); flips > 0; flips--) template[pick(template.length)] = pick(256);
      return template;
    }
    case 2:
      template[1] = pick(256);
      return template;
    case 3:
      return Buffer.from(Array.from({ length: 1 + pick(64) }, () => pick(256)));
    default: {
      const at = 2 + pick(Math.max(1, template.length - 2));
      const noise = Buffer.from(Array.from({ length: 1 + pick(8) }, () => pick(256)));
      return Buffer.concat([template.subarray(0, at), noise, template.subarray(at)]);
    }
  }
}

function rssMegabytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kilobytes = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
  return kilobytes / 1024;
}

/**
 * Settings for the rig's Node-RED: its runtime exposes a function that runs the
 * garbage collector and reports the heap, which a flow serves on GET /heap.
 */
const SETTINGS = `module.exports = {
  uiHost: '127.0.0.1', flowFile: 'flows.json', credentialSecret: false,
  logging: { console: { level: 'warn', metrics: false, audit: false } },
  functionGlobalContext: { heapAfterGc: () => { global.gc(); global.gc(); const m = process.memoryUsage(); return m.heapUsed + m.external; } },
};
`;

const HEAP_FLOW = [
  { id: 'heap-in', z: 'tab1', type: 'http in', url: '/heap', method: 'get', wires: [['heap-fn']] },
  {
    id: 'heap-fn',
    z: 'tab1',
    type: 'function',
    func: "msg.payload = String(global.get('heapAfterGc')()); return msg;",
    outputs: 1,
    wires: [['heap-out']],
  },
  { id: 'heap-out', z: 'tab1', type: 'http response', wires: [] },
];

function openSocket(port: number): Promise<net.Socket> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
    socket.on('error', () => resolve(socket));
  });
}

function closedByServer(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve();
    socket.once('close', () => resolve());
  });
}

/** Sends `bytes` on a fresh connection (after a valid CONNECT when `afterConnect`), then leaves. */
async function throwOne(
  port: number,
  { bytes, level }: { bytes: Buffer; level: 4 | 5 },
  afterConnect: boolean,
  id: number,
): Promise<void> {
  const socket = await openSocket(port);
  if (socket.destroyed) return;
  socket.on('data', () => undefined);
  const closed = closedByServer(socket);
  if (afterConnect) socket.write(level === 5 ? v5Connect(`fuzz-${id}`) : connect({ clientId: `fuzz-${id}` }));
  socket.write(bytes);
  // A truncated packet waits for bytes that never come: the client gives up, as a broken one would.
  await Promise.race([closed, delay(50)]);
  socket.destroy();
}

class HonestClient {
  readonly published = new Set<number>();
  readonly received = new Set<number>();
  readonly extraChecks: string[] = [];
  disconnections = 0;
  private next = 0;
  private running = true;
  private loop: Promise<void> | undefined;

  constructor(readonly client: mqtt.MqttClient) {
    client.on('message', (topic, payload) => {
      if (topic === 'honest/stream') this.received.add(Number(payload.toString()));
      else this.extraChecks.push(topic);
    });
    client.on('close', () => this.disconnections++);
  }

  static async connect(port: number): Promise<HonestClient> {
    const client = await mqtt.connectAsync({
      host: '127.0.0.1',
      port,
      clientId: 'honest',
      clean: false,
      protocolVersion: 4,
      reconnectPeriod: 0,
      keepalive: 30,
    });
    const honest = new HonestClient(client);
    await client.subscribeAsync('honest/stream', { qos: 1 });
    return honest;
  }

  /** Publishes a numbered QoS 1 message every 5 ms and, every half second, subscribes to a new topic, uses it and leaves it. */
  start(): void {
    this.loop = (async () => {
      let round = 0;
      while (this.running) {
        const n = ++this.next;
        await this.client.publishAsync('honest/stream', String(n), { qos: 1 });
        this.published.add(n);
        if (n % 100 === 0) {
          const topic = `honest/extra/${++round}`;
          await this.client.subscribeAsync(topic, { qos: 1 });
          await this.client.publishAsync(topic, 'x', { qos: 1 });
          await waitFor(() => this.extraChecks.includes(topic), `the message on ${topic}`);
          await this.client.unsubscribeAsync(topic);
        }
        await delay(5);
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

describe('embedded broker under a hostile mix', () => {
  let rig: NodeRedRig;
  let port: number;

  before(async () => {
    port = await freePort();
    rig = new NodeRedRig([
      { id: 'tab1', type: 'tab', label: 'broker' },
      embeddedBrokerNode(port, { id: BROKER, z: 'tab1', maxConnections: MAX_CONNECTIONS, connectTimeout: 2 }),
      ...HEAP_FLOW,
    ]);
    writeFileSync(path.join(rig.userDir, 'settings.js'), SETTINGS);
    // The rig's Node-RED inherits the environment: --expose-gc gives its heapAfterGc a collector to run;
    // and it runs without the test coverage, which keeps the code and counters of every function run
    // alive: the memory bounds below would count them as what the attack left.
    const nodeOptions = process.env.NODE_OPTIONS;
    const coverage = process.env.NODE_V8_COVERAGE;
    process.env.NODE_OPTIONS = `${nodeOptions ?? ''} --expose-gc`.trim();
    delete process.env.NODE_V8_COVERAGE;
    try {
      await rig.start();
    } finally {
      if (nodeOptions === undefined) delete process.env.NODE_OPTIONS;
      else process.env.NODE_OPTIONS = nodeOptions;
      if (coverage !== undefined) process.env.NODE_V8_COVERAGE = coverage;
    }
  });
  after(async () => {
    await rig.stop();
  });

  it(`keeps an honest client whole through ${MALFORMED_PACKETS.toLocaleString('en-US')} malformed packets, oversize packets, slow-loris connections and a connection flood`, async () => {
    console.log(`fuzz seed ${SEED} (FUZZ_SEED=${SEED} replays it)`);
    const next = random(SEED);
    const honest = await waitForHonest(port);
    honest.start();
    const pid = rig.process!.child.pid!;

    // A first round of everything, so that what is measured after is not the runtime warming up.
    await malformedRound(port, next, 500, 0);
    await delay(2000);
    const baseline = Math.min(...(await samples(pid, 5)));
    const heapBefore = await heapAfterGc(rig.url);

    const slowLoris = await slowLorisConnections(port, 40);
    const started = Date.now();
    await Promise.all([
      malformedRound(port, next, MALFORMED_PACKETS, 1_000_000),
      oversizePackets(port, 20),
      connectionFlood(port, MAX_CONNECTIONS + 200),
    ]);
    const attackSeconds = (Date.now() - started) / 1000;
    const peak = rssMegabytes(pid);
    // Slow-loris connections that never sent a whole CONNECT were closed by the broker's connect timeout.
    await Promise.race([
      Promise.all(slowLoris.map(closedByServer)),
      delay(10_000).then(() => assert.fail('slow-loris connections still open 10 s after the attack')),
    ]);

    await honest.stop();
    await waitFor(() => honest.received.size === honest.published.size, 'every honest message', 30_000);
    const missing = [...honest.published].filter((n) => !honest.received.has(n));
    await delay(3000);
    const after = Math.min(...(await samples(pid, 5)));
    const heapAfter = await heapAfterGc(rig.url);
    console.log(
      `attack ${attackSeconds.toFixed(1)} s; honest messages ${honest.published.size}, missing ${missing.length}, ` +
        `disconnections ${honest.disconnections}; RSS baseline ${baseline.toFixed(0)} MB, peak ${peak.toFixed(0)} MB, ` +
        `after ${after.toFixed(0)} MB; heap after gc ${heapBefore.toFixed(1)} MB before, ${heapAfter.toFixed(1)} MB after`,
    );
    assert.deepEqual(missing, []);
    assert.equal(honest.disconnections, 0, 'the honest client stayed connected');
    assert.ok(honest.client.connected);
    assert.ok(rig.process!.running, 'Node-RED is still running');
    assert.ok((await fetch(`${rig.url}/flows`)).ok, 'and serving');
    assert.ok(!/uncaught|unhandled/i.test(rig.process!.output), rig.process!.output.slice(-2000));
    // What the attack left on the heap and in Buffers, once collected: a leak of a few bytes per connection shows here.
    assert.ok(
      heapAfter < heapBefore + 8,
      `heap ${heapAfter.toFixed(1)} MB after, ${heapBefore.toFixed(1)} MB before`,
    );
    // RSS seldom goes all the way back down (V8 and the allocator keep pages): the bound is tolerant. With
    // Aedes 1.2 it stayed within 20 MB of its baseline; with 2.0.0-beta.1 it ends 15 to 125 MB above it
    // from run to run, the heap and external memory after collection back at their level in every run.
    assert.ok(after < baseline + 160, `RSS ${after.toFixed(0)} MB after, ${baseline.toFixed(0)} MB before`);
    await honest.client.endAsync();
  });
});

async function waitForHonest(port: number): Promise<HonestClient> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return await HonestClient.connect(port);
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await delay(100);
    }
  }
}

/** The Node-RED process's heap and external memory (Buffers are there) in MB after two full collections. */
async function heapAfterGc(url: string): Promise<number> {
  const response = await fetch(`${url}/heap`);
  assert.ok(response.ok, `GET /heap answered ${response.status}`);
  return Number(await response.text()) / 1024 / 1024;
}

async function samples(pid: number, count: number): Promise<number[]> {
  const values: number[] = [];
  for (let i = 0; i < count; i++) {
    values.push(rssMegabytes(pid));
    await delay(500);
  }
  return values;
}

/** `count` malformed packets, 32 connections at a time, half of them after a valid CONNECT. */
async function malformedRound(
  port: number,
  next: () => number,
  count: number,
  firstId: number,
): Promise<void> {
  let sent = 0;
  const worker = async () => {
    while (sent < count) {
      const id = firstId + sent++;
      await throwOne(port, malformed(next), next() < 0.5, id);
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
}

/** Clients that announce, or send, packets beyond the 1 MiB limit. */
async function oversizePackets(port: number, count: number): Promise<void> {
  const huge = publish('fuzz/huge', { payload: Buffer.alloc(2 * 1024 * 1024, 1) });
  const announced = Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]); // 256 MiB announced, nothing sent
  await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const socket = await openSocket(port);
      socket.on('data', () => undefined);
      const closed = closedByServer(socket);
      socket.write(connect({ clientId: `oversize-${i}` }));
      socket.write(i % 2 ? huge : announced);
      await Promise.race([closed, delay(5000)]);
      socket.destroy();
    }),
  );
}

/** Connections that send their CONNECT one byte at a time, too slowly to finish before the connect timeout. */
async function slowLorisConnections(port: number, count: number): Promise<net.Socket[]> {
  const sockets = await Promise.all(Array.from({ length: count }, () => openSocket(port)));
  const bytes = connect({ clientId: 'slow' });
  for (const socket of sockets) {
    let offset = 0;
    const timer = setInterval(() => {
      if (socket.destroyed || offset >= bytes.length - 1) return clearInterval(timer);
      socket.write(bytes.subarray(offset, ++offset));
    }, 500);
    socket.once('close', () => clearInterval(timer));
    socket.on('data', () => undefined);
  }
  return sockets;
}

/** More connections than maxConnections at once: the ones over it get CONNACK 3. */
async function connectionFlood(port: number, count: number): Promise<void> {
  const sockets = await Promise.all(Array.from({ length: count }, () => openSocket(port)));
  let refused = 0;
  await Promise.all(
    sockets.map(
      (socket, i) =>
        new Promise<void>((resolve) => {
          socket.on('data', (data: Buffer) => {
            if (data[0] === 0x20 && data[3] === 3) refused++;
            resolve();
          });
          socket.once('close', () => resolve());
          socket.write(connect({ clientId: `flood-${i}` }));
          setTimeout(resolve, 5000);
        }),
    ),
  );
  for (const socket of sockets) socket.destroy();
  assert.ok(refused > 0, 'the connections over the limit were answered CONNACK 3');
}
