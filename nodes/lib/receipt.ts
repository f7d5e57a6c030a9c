import { isMessageId } from './end-to-end-id.js';

/**
 * End-to-end receipts: a durable mqtt out node with `until: subscriber` asks the flows that
 * consume its messages to say when they have finished with each one. The request travels with
 * the message (its reply address: the MQTT 5 Response Topic and a user property, or the `reply`
 * field of the MQTT 3.1.1 envelope, see end-to-end-id.ts); the receipt is a small JSON message
 * published to that address by the durable mqtt in node, keyed by the message id.
 */

/** The MQTT 5 user property that marks a message whose Response Topic wants receipts. */
export const RECEIPT_REQUEST_PROPERTY = 'receipt';
export const RECEIPT_REQUESTED = 'requested';

/** What a consuming flow said about one message. */
export interface SubscriberReceipt {
  /** The message id (msg.messageId) it is about. */
  messageId: string;
  /** The subscriber that sent it: the in node's subscriber name. */
  by: string;
  /** True when the flow finished without an error. */
  ok: boolean;
  /** Milliseconds since the epoch when the subscriber sent it. */
  at: number;
  /** The flow's error, for a negative receipt. */
  error?: string;
  /** A negative receipt that will not change: the message was quarantined, so resending is pointless. */
  final?: boolean;
}

/** Longest error text a receipt carries: a stack trace is not needed to know what went wrong. */
const MAX_ERROR_LENGTH = 1000;
/** Longest subscriber name taken from a receipt. */
const MAX_NAME_LENGTH = 200;

export function encodeReceipt(receipt: SubscriberReceipt): Buffer {
  const wire: Record<string, unknown> = {
    receipt: receipt.messageId,
    by: receipt.by,
    ok: receipt.ok,
    at: receipt.at,
  };
  if (receipt.error !== undefined) wire.error = receipt.error.slice(0, MAX_ERROR_LENGTH);
  if (receipt.final) wire.final = true;
  return Buffer.from(JSON.stringify(wire));
}

/** The receipt in `bytes`, or undefined when they are not one (anything else published to the topic). */
export function decodeReceipt(bytes: Buffer): SubscriberReceipt | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  if (!parsed || typeof parsed !== 'object') return undefined;
  const { receipt, by, ok, at, error, final } = parsed as Record<string, unknown>;
  if (!isMessageId(receipt) || typeof by !== 'string' || by.length === 0 || by.length > MAX_NAME_LENGTH)
    return undefined;
  if (typeof ok !== 'boolean' || typeof at !== 'number' || !Number.isFinite(at)) return undefined;
  const decoded: SubscriberReceipt = { messageId: receipt, by, ok, at };
  if (typeof error === 'string') decoded.error = error.slice(0, MAX_ERROR_LENGTH);
  if (final === true) decoded.final = true;
  return decoded;
}

/** Which receipts make a message delivered: a number of subscribers, or these named ones. */
export type Expectation = { count: number } | { names: string[] };

/**
 * The `expect` setting: empty for one receipt, a whole number for that many (from different
 * subscribers), or a comma-separated list of subscriber names. Undefined when it is none of these.
 */
export function parseExpectation(text: string): Expectation | undefined {
  const trimmed = text.trim();
  if (trimmed === '') return { count: 1 };
  if (/^\d+$/.test(trimmed)) {
    const count = Number(trimmed);
    return count >= 1 && count <= 1000 ? { count } : undefined;
  }
  const names = [...new Set(trimmed.split(',').map((name) => name.trim()))];
  if (names.some((name) => name === '' || name.length > MAX_NAME_LENGTH)) return undefined;
  return { names };
}

/**
 * Whether the positive receipts from `by` (distinct subscriber names: a set, or a map keyed by them)
 * satisfy the expectation.
 */
export function expectationMet(
  expectation: Expectation,
  by: { readonly size: number; has(name: string): boolean },
): boolean {
  if ('count' in expectation) return by.size >= expectation.count;
  return expectation.names.every((name) => by.has(name));
}

/** The default receipt topic of an out node: its own, so receipts for other nodes never reach it. */
export function defaultReceiptTopic(nodeId: string): string {
  return `durable-mqtt/receipts/${nodeId}`;
}
