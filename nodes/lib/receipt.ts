import { isMessageId } from './end-to-end-id.js';
import { MAX_SUBSCRIBER_NAME_LENGTH } from './receipt-expectation.js';

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

/** One receipt as JSON text: the payload of a lone receipt, or one item of a batch (encodeReceipts). */
export function receiptJson(receipt: SubscriberReceipt): string {
  const wire: Record<string, unknown> = {
    receipt: receipt.messageId,
    by: receipt.by,
    ok: receipt.ok,
    at: receipt.at,
  };
  if (receipt.error !== undefined) wire.error = receipt.error.slice(0, MAX_ERROR_LENGTH);
  if (receipt.final) wire.final = true;
  return JSON.stringify(wire);
}

/**
 * The payload of one message carrying `receipts`, each made by receiptJson: a lone receipt is its
 * object; several go as a JSON array of them, one message instead of one each (receipt-reply.ts).
 */
export function encodeReceipts(receipts: readonly string[]): Buffer {
  return Buffer.from(receipts.length === 1 ? receipts[0] : `[${receipts.join(',')}]`);
}

/**
 * The receipts in `bytes` (one object, or an array of them), or undefined when they are not
 * receipts (anything else published to the topic): a batch with one item that is not a receipt is
 * refused whole, as a sender of ours never makes one.
 */
export function decodeReceipts(bytes: Buffer): SubscriberReceipt[] | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  const items = Array.isArray(parsed) ? parsed : [parsed];
  if (items.length === 0) return undefined;
  const receipts: SubscriberReceipt[] = [];
  for (const item of items) {
    const receipt = receiptFrom(item);
    if (!receipt) return undefined;
    receipts.push(receipt);
  }
  return receipts;
}

function receiptFrom(parsed: unknown): SubscriberReceipt | undefined {
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
  const { receipt, by, ok, at, error, final } = parsed as Record<string, unknown>;
  if (
    !isMessageId(receipt) ||
    typeof by !== 'string' ||
    by.length === 0 ||
    by.length > MAX_SUBSCRIBER_NAME_LENGTH
  )
    return undefined;
  if (typeof ok !== 'boolean' || typeof at !== 'number' || !Number.isFinite(at)) return undefined;
  const decoded: SubscriberReceipt = { messageId: receipt, by, ok, at };
  if (typeof error === 'string') decoded.error = error.slice(0, MAX_ERROR_LENGTH);
  if (final === true) decoded.final = true;
  return decoded;
}
