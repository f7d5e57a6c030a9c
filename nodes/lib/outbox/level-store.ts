import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { ClassicLevel } from 'classic-level';
import {
  EMPTY_META,
  type OpenedStore,
  type OutboxMeta,
  type OutboxStore,
  type StoreWrite,
  type StoredRecord,
} from './store.js';

/**
 * An outbox store in LevelDB (classic-level: prebuilt for x64, arm64 and armv7,
 * nothing to compile). Keys are 'r' + the sequence number as 8 big-endian bytes,
 * so key order is send order; the meta record sits under 'm' and changes in the
 * same atomic batch as the records, so a torn write loses both or neither.
 */
export class LevelOutboxStore implements OutboxStore {
  private readonly db: ClassicLevel<Buffer, Buffer>;

  constructor(private readonly directory: string) {
    this.db = new ClassicLevel<Buffer, Buffer>(directory, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  }

  async open(): Promise<OpenedStore> {
    await this.db.open();
    let meta: OutboxMeta = { ...EMPTY_META };
    const stored = await this.db.get(META_KEY);
    if (stored) meta = JSON.parse(stored.toString('utf8')) as OutboxMeta;
    return { meta, recoveryNotes: await this.recoveryNotes() };
  }

  async write(change: StoreWrite): Promise<void> {
    const batch = this.db.batch();
    for (const record of change.put) batch.put(recordKey(record.seq), encodeRecord(record));
    for (const seq of change.del) batch.del(recordKey(seq));
    batch.put(META_KEY, Buffer.from(JSON.stringify(change.meta)));
    await batch.write({ sync: change.sync });
  }

  async read(afterSeq: number, limit: number): Promise<StoredRecord[]> {
    const records: StoredRecord[] = [];
    for await (const value of this.db.values({ gt: recordKey(afterSeq), lt: RECORD_END, limit })) {
      records.push(decodeRecord(value));
    }
    return records;
  }

  async close(): Promise<void> {
    if (this.db.status === 'open' || this.db.status === 'opening') await this.db.close();
  }

  async destroy(): Promise<void> {
    await this.close();
    await rm(this.directory, { recursive: true, force: true });
  }

  /** LevelDB writes what recovery dropped (a torn log record) to its LOG file; the outbox reports it. */
  private async recoveryNotes(): Promise<string[]> {
    try {
      const log = await readFile(path.join(this.directory, 'LOG'), 'utf8');
      return log.split('\n').filter((line) => /dropping|corrupt/i.test(line));
    } catch {
      return [];
    }
  }
}

const META_KEY = Buffer.from('m');
const RECORD_END = Buffer.from('s');

const TWO_TO_32 = 0x1_0000_0000;

/** 'r' and the seq as 8 big-endian bytes (a seq is a safe integer: its high half fits 32 bits). */
function recordKey(seq: number): Buffer {
  const key = Buffer.allocUnsafe(9);
  key[0] = 0x72; // 'r'
  key.writeUInt32BE(Math.floor(seq / TWO_TO_32), 1);
  key.writeUInt32BE(seq % TWO_TO_32, 5);
  return key;
}

/**
 * [4-byte header length][header JSON][payload bytes]: the payload is stored as it is, not as
 * JSON. Written into one buffer, since every message of a durable out node goes through here.
 */
function encodeRecord(record: StoredRecord): Buffer {
  // The same JSON as JSON.stringify of the header makes, at a fraction of its cost for the usual fields.
  let json = `{"seq":${record.seq},"queuedAt":${record.queuedAt},"topic":${JSON.stringify(record.topic)},"qos":${record.qos},"retain":${record.retain}`;
  if (record.properties !== undefined) json += `,"properties":${JSON.stringify(record.properties)}`;
  if (record.messageId !== undefined) json += `,"messageId":${JSON.stringify(record.messageId)}`;
  // The msg is JSON text already: stored as it is, not escaped into a string again.
  if (record.msg !== undefined) json += `,"msg":${record.msg}`;
  json += '}';
  const headerLength = Buffer.byteLength(json);
  const value = Buffer.allocUnsafe(4 + headerLength + record.payload.length);
  value.writeUInt32BE(headerLength, 0);
  value.write(json, 4);
  record.payload.copy(value, 4 + headerLength);
  return value;
}

function decodeRecord(value: Buffer): StoredRecord {
  const headerLength = value.readUInt32BE(0);
  const header = JSON.parse(value.subarray(4, 4 + headerLength).toString('utf8')) as Omit<
    StoredRecord,
    'payload' | 'msg'
  > & { msg?: string | object };
  const { msg, ...fields } = header;
  const record: StoredRecord = { ...fields, payload: Buffer.from(value.subarray(4 + headerLength)) };
  // Earlier versions stored the msg as a JSON string; it is now the JSON itself.
  if (msg !== undefined) record.msg = typeof msg === 'string' ? msg : JSON.stringify(msg);
  return record;
}
