import type { IPublishPacket } from 'mqtt';
import type { EnvelopeContents } from '../lib/end-to-end-id.js';
import { publishTopicProblem } from '../lib/topic.js';
import {
  RECEIPT_REQUESTED,
  RECEIPT_REQUEST_PROPERTY,
  encodeReceipt,
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

/**
 * Publishes a receipt at QoS 1 through the in node's own connection. One that cannot go now is not
 * kept: its publisher sends the message again when no receipt comes, and the next one answers.
 */
export function sendReceipt(
  connection: PublishingConnection & { options: { protocolVersion: number } },
  reply: ReplyAddress,
  receipt: SubscriberReceipt,
  onFailure: (error: Error) => void,
): void {
  const options =
    reply.correlationData && connection.options.protocolVersion === 5
      ? { qos: 1 as const, properties: { correlationData: reply.correlationData } }
      : { qos: 1 as const };
  connection.publish(reply.topic, encodeReceipt(receipt), options, (error) => {
    if (error) onFailure(error);
  });
}
