import type { IPublishPacket } from 'mqtt';
import type { EnvelopeContents } from '../lib/end-to-end-id.js';
import { publishTopicProblem } from '../lib/topic.js';
import {
  RECEIPT_REQUESTED,
  RECEIPT_REQUEST_PROPERTY,
  encodeReceipts,
  receiptJson,
  type SubscriberReceipt,
} from '../lib/receipt.js';
import type { PublishingConnection } from '../lib/connection/types.js';

/** Where the receipt of a received message goes, when its publisher asks for one. */
export interface ReplyAddress {
  topic: string;
  /** MQTT 5: echoed back, as request/response asks. */
  correlationData?: Buffer;
}

/**
 * The reply address a message carries: on MQTT 5 its Response Topic, with the user property that
 * marks it as a request for receipts (a Response Topic alone is a flow's own request/response, not
 * ours to answer); on MQTT 3.1.1 the envelope's `reply`. Undefined when there is none to answer.
 */
export function replyAddressOf(
  packet: IPublishPacket,
  envelope: EnvelopeContents | undefined,
): ReplyAddress | undefined {
  const properties = packet.properties;
  let topic: string | undefined;
  let correlationData: Buffer | undefined;
  if (properties?.responseTopic) {
    const mark = properties.userProperties?.[RECEIPT_REQUEST_PROPERTY];
    if ((Array.isArray(mark) ? mark[0] : mark) === RECEIPT_REQUESTED) {
      topic = properties.responseTopic;
      correlationData = properties.correlationData;
    }
  }
  topic ??= envelope?.reply;
  if (topic === undefined || publishTopicProblem(topic)) return undefined;
  return correlationData ? { topic, correlationData } : { topic };
}

/** Largest batch of receipts in one message: far under any broker's packet limit, yet ~140 receipts. */
export const MAX_RECEIPT_BATCH_BYTES = 16 * 1024;

type ReceiptConnection = PublishingConnection & { options: { protocolVersion: number } };

interface Batch {
  items: string[];
  bytes: number;
  /** MQTT 5: the Correlation Data of the first receipt, echoed when it goes alone. */
  correlationData?: Buffer;
}

/**
 * Sends an in node's receipts at QoS 1 through its own connection, those to one reply address within
 * one turn of the event loop together in one message (encodeReceipts): a flow that finishes a burst of
 * messages answers them with a few publications, not one each, which would cost what the messages
 * themselves cost. A lone receipt goes as it always has, with its MQTT 5 Correlation Data; a batch has
 * the ids in its payload. A receipt that cannot go now is not kept: its publisher sends the message
 * again when no receipt comes, and the next one answers.
 */
export class ReceiptReplies {
  private readonly batches = new Map<string, Batch>();
  private flushScheduled = false;

  constructor(
    private readonly connection: ReceiptConnection,
    private readonly onFailure: (topic: string, error: Error) => void,
  ) {}

  send(reply: ReplyAddress, receipt: SubscriberReceipt): void {
    const json = receiptJson(receipt);
    let batch = this.batches.get(reply.topic);
    if (batch && batch.bytes + json.length + 1 > MAX_RECEIPT_BATCH_BYTES) {
      this.publish(reply.topic, batch);
      batch = undefined;
    }
    if (!batch) {
      batch = { items: [], bytes: 2, correlationData: reply.correlationData };
      this.batches.set(reply.topic, batch);
    }
    batch.items.push(json);
    batch.bytes += json.length + 1;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Publishes every batch now (also when the node closes, so receipts already made still go). */
  flush(): void {
    this.flushScheduled = false;
    // Each publish takes its batch out of the map.
    for (const [topic, batch] of this.batches) this.publish(topic, batch);
  }

  private publish(topic: string, batch: Batch): void {
    this.batches.delete(topic);
    const alone = batch.items.length === 1;
    const options =
      alone && batch.correlationData && this.connection.options.protocolVersion === 5
        ? { qos: 1 as const, properties: { correlationData: batch.correlationData } }
        : { qos: 1 as const };
    this.connection.publish(topic, encodeReceipts(batch.items), options, (error) => {
      if (error) this.onFailure(topic, error);
    });
  }
}
