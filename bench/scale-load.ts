/**
 * The load generator of the `scale` job, in a process of its own (forked by bench/scale.ts, two of
 * them per run): `count` plain TCP connections to the broker, each a client of its own (MQTT 3.1.1,
 * clean session, keep-alive 60 s) written with mqtt-packet and nothing else, so that 10,000 clients
 * fit in two processes. On `go` each client publishes one QoS 1 message every `intervalSeconds` to
 * its own topic, the clients spread evenly over the interval; the payload names the topic and the
 * message's sequence number, for the subscriber to count each message once.
 */
import net from 'node:net';
import mqttPacket from 'mqtt-packet';
import { clientTopic, messageKey, type ScaleLoadMessage, type ScaleLoadOrder } from './scale-types.js';

/** Connections being opened at once: more only queue in the broker's accept backlog. */
const CONNECTING_AT_ONCE = 100;
/** A client quiet this long sends a PINGREQ, well within its 60 s keep-alive. */
const PING_AFTER_MS = 30_000;

interface LoadClient {
  index: number;
  socket: net.Socket;
  sequence: number;
  /** Packet ids of the publications not yet acknowledged. */
  awaiting: Set<number>;
  lastSentAt: number;
}

const clients: LoadClient[] = [];
let acknowledged = 0;
let unexpectedCloses = 0;
const errors: string[] = [];

function send(message: ScaleLoadMessage): Promise<void> {
  return new Promise((resolve) => process.send?.(message, () => resolve()));
}

function write(client: LoadClient, packet: mqttPacket.Packet) {
  client.socket.write(mqttPacket.generate(packet));
  client.lastSentAt = Date.now();
}

function open(port: number, index: number): Promise<LoadClient> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
    const client: LoadClient = { index, socket, sequence: 0, awaiting: new Set(), lastSentAt: Date.now() };
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    let connected = false;
    parser.on('packet', (packet) => {
      if (packet.cmd === 'connack') {
        if (packet.returnCode !== 0) {
          reject(new Error(`client ${index}: CONNACK ${packet.returnCode}`));
          socket.destroy();
          return;
        }
        connected = true;
        resolve(client);
      } else if (packet.cmd === 'puback' && client.awaiting.delete(packet.messageId ?? -1)) acknowledged++;
    });
    parser.on('error', (error) => socket.destroy(error));
    socket.on('data', (chunk) => parser.parse(chunk));
    socket.on('error', (error) => {
      if (errors.length < 5) errors.push(`client ${index}: ${error.message}`);
    });
    socket.on('close', () => {
      if (!connected) reject(new Error(`client ${index}: closed before its CONNACK`));
      else if (!stopping) unexpectedCloses++;
    });
    write(client, {
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clean: true,
      clientId: `scale-${index}`,
      keepalive: 60,
    });
  });
}

let stopping = false;

async function connectAll(order: ScaleLoadOrder) {
  let next = order.first;
  const end = order.first + order.count;
  const worker = async () => {
    while (next < end) clients.push(await open(order.port, next++));
  };
  await Promise.all(Array.from({ length: CONNECTING_AT_ONCE }, worker));
}

/**
 * Publishes for `seconds`: client i's k-th message is due at i/N of the interval plus k intervals,
 * N the clients of the whole run, so the load is even across both generator processes. Message m
 * of this process is client m mod n's, n its clients, in the order they fall due.
 */
function publishFor(order: ScaleLoadOrder, seconds: number): Promise<{ sent: number; lateMs: number }> {
  const interval = order.intervalSeconds * 1000;
  const started = Date.now();
  const ordered = [...clients].sort((a, b) => a.index - b.index);
  const dueOf = (client: LoadClient) =>
    started + (client.index / order.totalClients) * interval + client.sequence * interval;
  let next = 0;
  let lateMs = 0;
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      const now = Date.now();
      for (;;) {
        const client = ordered[next % ordered.length];
        const due = dueOf(client);
        if (due - started >= seconds * 1000) {
          clearInterval(timer);
          resolve({ sent: next, lateMs });
          return;
        }
        if (due > now) break;
        lateMs = Math.max(lateMs, now - due);
        const messageId = (client.sequence % 65_535) + 1;
        client.awaiting.add(messageId);
        write(client, {
          cmd: 'publish',
          topic: clientTopic(client.index),
          payload: messageKey(client.index, client.sequence),
          qos: 1,
          messageId,
          retain: false,
          dup: false,
        });
        client.sequence++;
        next++;
      }
    }, 10);
  });
}

function keepAlive() {
  return setInterval(() => {
    const quietSince = Date.now() - PING_AFTER_MS;
    for (const client of clients) if (client.lastSentAt < quietSince) write(client, { cmd: 'pingreq' });
  }, 5000);
}

/** The worker's next order of one of these types. */
function nextOrder<T extends 'go' | 'stop'>(...types: T[]): Promise<Extract<ScaleLoadMessage, { type: T }>> {
  return new Promise((resolve) => {
    const listener = (message: ScaleLoadMessage) => {
      if (!(types as string[]).includes(message.type)) return;
      process.off('message', listener);
      resolve(message as Extract<ScaleLoadMessage, { type: T }>);
    };
    process.on('message', listener);
  });
}

async function main(order: ScaleLoadOrder) {
  const connectStarted = Date.now();
  await connectAll(order);
  await send({ type: 'connected', clients: clients.length, seconds: (Date.now() - connectStarted) / 1000 });
  const pinger = keepAlive();
  // A memory reference only connects: `stop` comes without a `go`.
  const first = await nextOrder('go', 'stop');
  if (first.type === 'go') {
    const { sent, lateMs } = await publishFor(order, first.seconds);
    // The last publications' PUBACKs: a few seconds at most on loopback.
    const deadline = Date.now() + 15_000;
    while (acknowledged < sent && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    clearInterval(pinger);
    await send({ type: 'published', sent, acknowledged, lateMs, unexpectedCloses, errors });
    await nextOrder('stop');
  } else clearInterval(pinger);
  stopping = true;
  for (const client of clients) client.socket.end(mqttPacket.generate({ cmd: 'disconnect' }));
}

const order = JSON.parse(process.argv[2] ?? '{}') as ScaleLoadOrder;
main(order).then(
  () => setTimeout(() => process.exit(0), 500),
  async (error: Error) => {
    await send({ type: 'failed', error: error.stack ?? String(error) });
    process.exit(1);
  },
);
