/**
 * MQTT 3.1.1 packets built byte by byte, right or deliberately wrong, and a
 * raw TCP session that sends them and records what comes back: for tests of
 * what the broker does with packets no client library would send.
 */
import net from 'node:net';

export const CONNACK_ACCEPTED = Buffer.from([0x20, 0x02, 0x00, 0x00]);

/** A length-prefixed field: a UTF-8 string, or raw bytes when given a Buffer. */
export function field(value: string | Buffer): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  const length = Buffer.alloc(2);
  length.writeUInt16BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

export function uint16(value: number): Buffer {
  const bytes = Buffer.alloc(2);
  bytes.writeUInt16BE(value);
  return bytes;
}

function remainingLength(length: number): Buffer {
  const bytes: number[] = [];
  do {
    let byte = length % 128;
    length = Math.floor(length / 128);
    if (length > 0) byte |= 0x80;
    bytes.push(byte);
  } while (length > 0);
  return Buffer.from(bytes);
}

/** A packet: its first byte (type << 4 | flags) and its body. */
export function packet(firstByte: number, ...body: Buffer[]): Buffer {
  const content = Buffer.concat(body);
  return Buffer.concat([Buffer.from([firstByte]), remainingLength(content.length), content]);
}

export interface ConnectSpec {
  clientId?: string | Buffer;
  clean?: boolean;
  keepalive?: number;
  level?: number;
  protocolName?: string;
  will?: { topic: string | Buffer; payload?: Buffer; qos?: number; retain?: boolean };
  username?: string | Buffer;
  password?: string | Buffer;
  /** Replaces the computed connect flags. */
  flags?: number;
  /** Bytes appended after the fields. */
  extra?: Buffer;
}

export function connect(spec: ConnectSpec = {}): Buffer {
  const clean = spec.clean ?? true;
  let flags = clean ? 0x02 : 0;
  const payload = [field(spec.clientId ?? '')];
  if (spec.will) {
    flags |= 0x04 | ((spec.will.qos ?? 0) << 3) | (spec.will.retain ? 0x20 : 0);
    payload.push(field(spec.will.topic), field(spec.will.payload ?? Buffer.from('gone')));
  }
  if (spec.username !== undefined) {
    flags |= 0x80;
    payload.push(field(spec.username));
  }
  if (spec.password !== undefined) {
    flags |= 0x40;
    payload.push(field(spec.password));
  }
  const header = Buffer.concat([
    field(spec.protocolName ?? 'MQTT'),
    Buffer.from([spec.level ?? 4, spec.flags ?? flags]),
    uint16(spec.keepalive ?? 60),
  ]);
  return packet(0x10, header, ...payload, spec.extra ?? Buffer.alloc(0));
}

export function publish(
  topic: string | Buffer,
  options: { qos?: number; packetId?: number; payload?: Buffer; flags?: number } = {},
): Buffer {
  const qos = options.qos ?? 0;
  const flags = options.flags ?? qos << 1;
  const id = qos > 0 ? uint16(options.packetId ?? 1) : Buffer.alloc(0);
  return packet(0x30 | flags, field(topic), id, options.payload ?? Buffer.from('payload'));
}

export function subscribe(packetId: number, filters: [filter: string | Buffer, options: number][]): Buffer {
  return packet(
    0x82,
    uint16(packetId),
    ...filters.flatMap(([filter, options]) => [field(filter), Buffer.from([options])]),
  );
}

export function unsubscribe(packetId: number, filters: (string | Buffer)[]): Buffer {
  return packet(0xa2, uint16(packetId), ...filters.map((filter) => field(filter)));
}

/** A raw TCP session with the broker: what was received, and whether the broker closed it. */
export class RawSession {
  received = Buffer.alloc(0);
  closed = false;
  private readonly socket: net.Socket;
  readonly whenClosed: Promise<void>;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => (this.received = Buffer.concat([this.received, chunk])));
    socket.on('error', () => undefined);
    this.whenClosed = new Promise((resolve) =>
      socket.once('close', () => {
        this.closed = true;
        resolve();
      }),
    );
  }

  static open(port: number): Promise<RawSession> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => resolve(new RawSession(socket)));
      socket.once('error', reject);
    });
  }

  send(...packets: Buffer[]): void {
    this.socket.write(Buffer.concat(packets));
  }

  /** Resolves true once the broker has closed the connection, false if it is still open after `ms`. */
  async closesWithin(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
    const result = await Promise.race([this.whenClosed.then(() => true as const), timeout]);
    clearTimeout(timer);
    return result;
  }

  /** Resolves once `length` bytes have come, or rejects after `ms`. */
  async receive(length: number, ms = 2000): Promise<Buffer> {
    const deadline = Date.now() + ms;
    while (this.received.length < length) {
      if (Date.now() > deadline || this.closed)
        throw new Error(`expected ${length} bytes, got ${this.received.toString('hex')}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return this.received.subarray(0, length);
  }

  destroy(): void {
    this.socket.destroy();
  }
}
