/**
 * MQTT 5 properties (section 2.2.2) as bytes: what the packet gate checks of them before Aedes reads
 * them. mqtt-packet, the parser under Aedes, refuses an identifier it does not know but takes a
 * property given twice, which section 2.2.2.2 makes a Protocol Error (only User Property may repeat).
 */

type ValueKind = 'byte' | 'uint16' | 'uint32' | 'varint' | 'prefixed' | 'pair';

/** Every property identifier of MQTT 5 (table 2-4), by the encoding of its value. */
const VALUE_KINDS = new Map<number, ValueKind>([
  [0x01, 'byte'], // Payload Format Indicator
  [0x02, 'uint32'], // Message Expiry Interval
  [0x03, 'prefixed'], // Content Type
  [0x08, 'prefixed'], // Response Topic
  [0x09, 'prefixed'], // Correlation Data
  [0x0b, 'varint'], // Subscription Identifier
  [0x11, 'uint32'], // Session Expiry Interval
  [0x12, 'prefixed'], // Assigned Client Identifier
  [0x13, 'uint16'], // Server Keep Alive
  [0x15, 'prefixed'], // Authentication Method
  [0x16, 'prefixed'], // Authentication Data
  [0x17, 'byte'], // Request Problem Information
  [0x18, 'uint32'], // Will Delay Interval
  [0x19, 'byte'], // Request Response Information
  [0x1a, 'prefixed'], // Response Information
  [0x1c, 'prefixed'], // Server Reference
  [0x1f, 'prefixed'], // Reason String
  [0x21, 'uint16'], // Receive Maximum
  [0x22, 'uint16'], // Topic Alias Maximum
  [0x23, 'uint16'], // Topic Alias
  [0x24, 'byte'], // Maximum QoS
  [0x25, 'byte'], // Retain Available
  [0x26, 'pair'], // User Property
  [0x27, 'uint32'], // Maximum Packet Size
  [0x28, 'byte'], // Wildcard Subscription Available
  [0x29, 'byte'], // Subscription Identifier Available
  [0x2a, 'byte'], // Shared Subscription Available
]);

const USER_PROPERTY = 0x26;

/** The length of the value of `kind` at `offset`, or undefined when it runs past `block`. */
function valueLength(kind: ValueKind, block: Buffer, offset: number): number | undefined {
  const fits = (length: number) => (offset + length <= block.length ? length : undefined);
  switch (kind) {
    case 'byte':
      return fits(1);
    case 'uint16':
      return fits(2);
    case 'uint32':
      return fits(4);
    case 'varint':
      for (let i = 0; i < 4 && offset + i < block.length; i++)
        if ((block[offset + i] & 0x80) === 0) return i + 1;
      return undefined;
    case 'prefixed':
      return offset + 2 <= block.length ? fits(2 + block.readUInt16BE(offset)) : undefined;
    case 'pair': {
      const key = valueLength('prefixed', block, offset);
      const value = key === undefined ? undefined : valueLength('prefixed', block, offset + key);
      return key === undefined || value === undefined ? undefined : key + value;
    }
  }
}

const TOPIC_ALIAS = 0x23;

/** Where the value of property `id` starts in a well-formed block (see propertiesProblem), or undefined. */
export function propertyValueOffset(block: Buffer, id: number): number | undefined {
  let offset = 0;
  while (offset < block.length) {
    const current = block[offset++];
    if (current === id) return offset;
    const kind = VALUE_KINDS.get(current);
    const length = kind && valueLength(kind, block, offset);
    if (length === undefined) return undefined;
    offset += length;
  }
  return undefined;
}

/** The Topic Alias among well-formed property blocks (checked by propertiesProblem first), or undefined. */
export function topicAliasOf(blocks: Buffer[]): number | undefined {
  for (const block of blocks) {
    const offset = propertyValueOffset(block, TOPIC_ALIAS);
    if (offset !== undefined) return block.readUInt16BE(offset);
  }
  return undefined;
}

const REQUEST_PROBLEM_INFORMATION = 0x17;
const REASON_STRING = 0x1f;

/**
 * Whether a client may be told a Reason String on an acknowledgment: not when its CONNECT's
 * properties (`block`) say Request Problem Information 0 [MQTT-3.1.2-29].
 */
export function wantsProblemInformation(block: Buffer | undefined): boolean {
  const offset = block && propertyValueOffset(block, REQUEST_PROBLEM_INFORMATION);
  return offset === undefined || block?.[offset] !== 0;
}

/** A property block holding `text` as the Reason String, cut to 200 characters (never inside one). */
export function reasonStringProperty(text: string): Buffer {
  const utf8 = Buffer.from(text.slice(0, 200), 'utf8');
  const head = Buffer.from([REASON_STRING, utf8.length >> 8, utf8.length & 0xff]);
  return Buffer.concat([head, utf8]);
}

/** What is wrong with a block of properties (the bytes after its length), or undefined. */
export function propertiesProblem(block: Buffer): string | undefined {
  const seen = new Set<number>();
  let offset = 0;
  while (offset < block.length) {
    // Every identifier defined is below 0x80: a one-byte variable byte integer.
    const id = block[offset++];
    const kind = VALUE_KINDS.get(id);
    if (!kind) return `an unknown property identifier 0x${id.toString(16)}`;
    if (seen.has(id) && id !== USER_PROPERTY) return `property 0x${id.toString(16)} more than once`;
    seen.add(id);
    const length = valueLength(kind, block, offset);
    if (length === undefined) return `property 0x${id.toString(16)} runs past its properties`;
    offset += length;
  }
  return undefined;
}
