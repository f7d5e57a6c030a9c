/**
 * A memory reference of the `scale` job, in a process of its own (forked by bench/scale-reference.ts
 * with --expose-gc): `floor`, a bare Node.js TCP server that answers each client's CONNECT with a
 * CONNACK and reads nothing else, what any Node.js broker pays per connection before its first
 * object; or `aedes`, the Aedes package as it comes (no patch of this package, in-memory
 * persistence) on a plain TCP server. It listens on a free loopback port and, when the worker asks,
 * collects garbage three times half a second apart, so that the worker reads the RSS of a settled
 * heap from /proc as it does for the broker under test.
 */
import net from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import type { ScaleReference, ScaleServerMessage } from './scale-types.js';

/** CONNACK, MQTT 3.1.1: no session present, return code 0. */
const CONNACK = Buffer.from([0x20, 0x02, 0x00, 0x00]);
/** The packet type of a CONNECT, in the high nibble of its first byte. */
const CONNECT_TYPE = 1;

const gc = (globalThis as { gc?: () => void }).gc;

function send(message: ScaleServerMessage): Promise<void> {
  return new Promise((resolve) => process.send?.(message, () => resolve()));
}

/** Answers the first packet, a CONNECT, with a CONNACK; what the client sends after is dropped unread. */
function floorServer(): net.Server {
  return net.createServer({ noDelay: true }, (socket) => {
    // A client resetting its connection as the job ends is no failure of the reference.
    socket.on('error', () => {});
    socket.once('data', (chunk: Buffer) => {
      if (chunk[0] >> 4 === CONNECT_TYPE) socket.write(CONNACK);
      else socket.destroy();
    });
  });
}

async function aedesServer(): Promise<net.Server> {
  const { Aedes } = await import('aedes');
  const broker = await Aedes.createBroker();
  return net.createServer({ noDelay: true }, broker.handle);
}

async function main(reference: ScaleReference) {
  if (!gc) throw new Error('the reference server needs --expose-gc');
  const forceGc = gc;
  const server = reference === 'floor' ? floorServer() : await aedesServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  process.on('message', (message: ScaleServerMessage) => {
    if (message.type !== 'settle') return;
    void (async () => {
      for (let round = 0; round < 3; round++) {
        forceGc();
        await delay(500);
      }
      await send({ type: 'settled' });
    })();
  });
  // The worker gone, nothing is left to serve.
  process.on('disconnect', () => process.exit(0));
  await send({ type: 'listening', port: (server.address() as net.AddressInfo).port });
}

const reference = process.argv[2];
if (reference !== 'floor' && reference !== 'aedes')
  throw new Error(`unknown reference server "${reference}"`);
main(reference).catch(async (error: Error) => {
  await send({ type: 'failed', error: error.stack ?? String(error) });
  process.exit(1);
});
