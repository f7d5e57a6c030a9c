import type { KeyedStore } from '../keyed-store.js';
import { LevelKeyedStore } from '../keyed-store.js';
import { RecencyMap } from './recency-map.js';

/** A quarantined message as it arrived, to send to the flow again when someone releases it. */
export interface KeptMessage {
  topic: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
  retain: boolean;
  /** MQTT 5 properties as they arrived (correlation data a Buffer). */
  properties?: Record<string, unknown>;
}

/** Payload bytes kept for all quarantined messages of one in node, by default: 4 MiB. */
export const DEFAULT_KEPT_BYTES = 4 * 1024 * 1024;

/**
 * The quarantined messages of an in node, kept so that a user who fixed the flow can release one
 * into it again. Bounded by bytes, not by count: a device on a Raspberry Pi quarantining large
 * payloads must not fill its memory. Over the bound the oldest kept message goes first; its
 * quarantine entry stays (listed, discardable), only its release is no longer possible.
 * Kept messages are written without an fsync: losing one to a power cut only loses its release.
 */
export class KeptMessages {
  private readonly messages = new RecencyMap<KeptMessage>();
  private bytes = 0;

  private constructor(
    private readonly store: KeyedStore<KeptMessage>,
    private readonly maxBytes: number,
  ) {}

  /** Opens the store and forgets what the delivery counts no longer hold quarantined (`quarantined`). */
  static async open(
    store: KeyedStore<KeptMessage>,
    quarantined: ReadonlySet<string>,
    maxBytes = DEFAULT_KEPT_BYTES,
  ): Promise<KeptMessages> {
    const kept = new KeptMessages(store, maxBytes);
    const stale: string[] = [];
    for (const { key, entry } of await store.open()) {
      if (quarantined.has(key)) kept.add(key, entry);
      else stale.push(key);
    }
    const over = kept.evict();
    if (stale.length + over.length > 0) await store.write({ put: [], del: [...stale, ...over], sync: false });
    return kept;
  }

  has(key: string): boolean {
    return this.messages.get(key) !== undefined;
  }

  get(key: string): KeptMessage | undefined {
    return this.messages.get(key);
  }

  /** Keeps the message of a key just quarantined; one larger than the whole bound is not kept. */
  async keep(key: string, message: KeptMessage): Promise<void> {
    if (message.payload.length > this.maxBytes) return;
    this.remove(key);
    this.add(key, message);
    const evicted = this.evict();
    await this.store.write({ put: [{ key, entry: message }], del: evicted, sync: false });
  }

  /** Forgets the message of `key` (released, discarded, or its quarantine entry gone). */
  async forget(key: string): Promise<void> {
    if (!this.remove(key)) return;
    await this.store.write({ put: [], del: [key], sync: false });
  }

  close(): Promise<void> {
    return this.store.close();
  }

  destroy(): Promise<void> {
    return this.store.destroy();
  }

  private add(key: string, message: KeptMessage): void {
    this.messages.setNewest(key, message);
    this.bytes += message.payload.length;
  }

  private remove(key: string): boolean {
    const message = this.messages.get(key);
    if (!message) return false;
    this.messages.delete(key);
    this.bytes -= message.payload.length;
    return true;
  }

  /** Forgets the oldest messages until the rest fits the bound; says which. */
  private evict(): string[] {
    const evicted: string[] = [];
    for (let oldest = this.messages.oldest(); oldest && this.bytes > this.maxBytes;) {
      this.remove(oldest[0]);
      evicted.push(oldest[0]);
      oldest = this.messages.oldest();
    }
    return evicted;
  }
}

/**
 * Kept messages in LevelDB: a uint32 length, the JSON of the topic, QoS, retain flag and
 * properties (a Buffer in them as Node.js writes one in JSON, read back as a Buffer), then the
 * payload's bytes as they arrived.
 */
export class LevelKeptMessageStore extends LevelKeyedStore<KeptMessage> {
  constructor(directory: string) {
    super(directory, { encode: encodeMessage, decode: decodeMessage });
  }
}

function encodeMessage({ payload, ...header }: KeptMessage): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(json.length, 0);
  return Buffer.concat([length, json, payload]);
}

function decodeMessage(value: Buffer): KeptMessage {
  const length = value.readUInt32BE(0);
  const header = JSON.parse(value.toString('utf8', 4, 4 + length), reviveBuffer) as Omit<
    KeptMessage,
    'payload'
  >;
  return { ...header, payload: Buffer.from(value.subarray(4 + length)) };
}

function reviveBuffer(_key: string, value: unknown): unknown {
  const json = value as { type?: unknown; data?: unknown } | null;
  return json?.type === 'Buffer' && Array.isArray(json.data) ? Buffer.from(json.data as number[]) : value;
}
