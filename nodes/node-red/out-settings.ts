import type { NodeDef, NodeMessage, NodeMessageInFlow } from 'node-red';
import type { OverflowPolicy } from '../lib/outbox/limits.js';
import type { PropertiesMessage, PropertySettings } from './mqtt5-properties.js';
import type { ReceiptSettingsDef } from './receipt-settings.js';

// The durable mqtt out node's settings and the msgs it takes, apart from its wiring (mqtt-out.ts).

export type Persistence = 'none' | 'queued' | 'acknowledged';
export const PERSISTENCE_MODES: readonly Persistence[] = ['none', 'queued', 'acknowledged'];

/** Defaults of the outbox bounds: generous for a Raspberry Pi's SD card, and stated in the help. */
export const DEFAULT_MAX_MESSAGES = 100_000;
export const DEFAULT_MAX_BYTES = 100 * 1024 * 1024;

/**
 * The live message: what acknowledged mode keeps in memory beside the outbox record of a msg
 * this process accepted, until the broker acknowledges it.
 */
export interface LiveMessage {
  msg: NodeMessage;
  send: (msg: NodeMessage) => void;
  /** Node-RED's completion, called on the acknowledgment (or the subscribers' receipts). */
  done: (error?: Error) => void;
}

/** Where the topic comes from: the field itself ('str', empty for msg.topic), a msg property, an environment variable. */
export type TopicSource = 'str' | 'msg' | 'env';
export const TOPIC_SOURCES: readonly TopicSource[] = ['str', 'msg', 'env'];

export interface MqttOutDef extends NodeDef, PropertySettings, ReceiptSettingsDef {
  broker: string;
  topic: string;
  /** Absent in flows written before it existed: 'str'. */
  topicType?: TopicSource;
  /** '' lets msg.qos decide. */
  qos: string | number;
  /** '' lets msg.retain decide. */
  retain: string | boolean;
  persistence: Persistence;
  maxMessages?: string | number;
  maxBytes?: string | number;
  overflow?: OverflowPolicy;
  /** Stamp each message with an id (msg.messageId) that travels with it. */
  messageId?: boolean | string;
  /** On MQTT 3.1.1, carry the id in a JSON envelope around the payload. */
  messageIdEnvelope?: boolean | string;
}

export interface OutMessage extends Omit<NodeMessageInFlow, 'topic'>, PropertiesMessage {
  topic?: unknown;
  qos?: unknown;
  retain?: unknown;
  messageId?: unknown;
  /** Core's manual topic alias: not taken (see the broker config's topic aliases). */
  topicAlias?: unknown;
  action?: unknown;
  broker?: unknown;
}

/** An input problem, with the msg left untouched so a Catch node can inspect it. */
export class InputError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
