import type { ReceiptOptions } from '../lib/outbox/receipt-waiter.js';
import { readNumber, readString } from '../lib/config-values.js';
import { publishTopicProblem } from '../lib/topic.js';
import { decodeReceipts, type SubscriberReceipt } from '../lib/receipt.js';
import { defaultReceiptTopic, parseExpectation } from '../lib/receipt-expectation.js';
import type { BrokerConnection } from '../lib/connection/broker-connection.js';
import type { Subscriber } from '../lib/connection/types.js';

/** What an out node with `persistence: acknowledged` waits for before a message leaves its outbox. */
export type Until = 'broker' | 'subscriber';

/** The out node's receipt settings as the editor saves them (absent in flows made before them). */
export interface ReceiptSettingsDef {
  until?: Until;
  /** Empty: one receipt; a number of receipts; or subscriber names, comma-separated. */
  expect?: string;
  /** Seconds. */
  receiptTimeout?: string | number;
  /** Seconds; 0 or empty: never. */
  giveUpAfter?: string | number;
  /** Empty: the node's own topic (defaultReceiptTopic). */
  receiptTopic?: string;
}

export const DEFAULT_RECEIPT_TIMEOUT = 30;
/** Messages awaiting receipts at once, per out node: a window, so a slow subscriber bounds memory. */
export const DEFAULT_MAX_AWAITING = 1000;

export type ReceiptSettings = { options: ReceiptOptions; topic: string };

/** The setting that is wrong, for the error the node shows. */
export class InvalidReceiptSettingError extends Error {
  constructor(
    readonly setting: 'expect' | 'receiptTimeout' | 'giveUpAfter' | 'receiptTopic',
    readonly value: string,
  ) {
    super(`invalid ${setting}: ${value}`);
  }
}

/** Seconds from a setting: its default when empty or absent, NaN when it is not a number. */
function readSeconds(value: unknown, fallback: number): number {
  if (value === undefined || value === null || readString(value).trim() === '') return fallback;
  return readNumber(value, NaN);
}

/** The receipt settings of an out node, or undefined when it waits for the broker only. */
export function readReceiptSettings(def: ReceiptSettingsDef, nodeId: string): ReceiptSettings | undefined {
  if (def.until !== 'subscriber') return undefined;
  const expectation = parseExpectation(readString(def.expect));
  if (!expectation) throw new InvalidReceiptSettingError('expect', readString(def.expect));
  // Empty takes the default; anything else must be a number (a typo is refused, not read as the default).
  const timeout = readSeconds(def.receiptTimeout, DEFAULT_RECEIPT_TIMEOUT);
  if (!(timeout > 0)) throw new InvalidReceiptSettingError('receiptTimeout', String(def.receiptTimeout));
  const giveUpAfter = readSeconds(def.giveUpAfter, 0);
  if (!(giveUpAfter >= 0)) throw new InvalidReceiptSettingError('giveUpAfter', String(def.giveUpAfter));
  const topic = readString(def.receiptTopic).trim() || defaultReceiptTopic(nodeId);
  if (publishTopicProblem(topic)) throw new InvalidReceiptSettingError('receiptTopic', topic);
  return {
    topic,
    options: {
      expectation,
      timeoutMs: timeout * 1000,
      giveUpAfterMs: giveUpAfter * 1000,
      maxAwaiting: DEFAULT_MAX_AWAITING,
    },
  };
}

export interface ReceiptHandlers {
  receipt(receipt: SubscriberReceipt): void;
  /** Something on the receipt topic that is not a receipt. */
  stray(payload: Buffer): void;
  /** The broker refused the subscription: no receipt can come. */
  refused(returnCode: number): void;
}

/**
 * Subscribes the out node to its receipt topic through its broker config's connection, at QoS 1:
 * with a persistent session, receipts sent while it was away are waiting for it.
 */
export function listenForReceipts(
  connection: BrokerConnection,
  topic: string,
  persistentSession: boolean,
  handlers: ReceiptHandlers,
): { close(removed: boolean): void } {
  const subscriber: Subscriber = {
    onMessage(_topic: string, payload: Buffer) {
      const receipts = decodeReceipts(payload);
      if (!receipts) return handlers.stray(payload);
      for (const receipt of receipts) handlers.receipt(receipt);
    },
    onSubscribeFailure(failure) {
      handlers.refused(failure.returnCode);
    },
  };
  connection.subscribe(topic, 1, subscriber, persistentSession);
  return {
    close(removed) {
      connection.unsubscribe(topic, subscriber, persistentSession && !removed);
    },
  };
}
