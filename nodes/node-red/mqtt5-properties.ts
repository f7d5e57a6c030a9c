import type { IClientPublishOptions } from 'mqtt';
import { publishTopicProblem } from '../lib/topic.js';

/** The MQTT 5 publish properties a msg carries under their own names, as the core mqtt nodes do. */
export const MSG_PROPERTIES = [
  'responseTopic',
  'correlationData',
  'contentType',
  'userProperties',
  'messageExpiryInterval',
] as const;
export type MsgProperty = (typeof MSG_PROPERTIES)[number];

/** What a msg may hold of them, unchecked. */
export type PropertiesMessage = { [Name in MsgProperty]?: unknown };

export type PublishProperties = NonNullable<IClientPublishOptions['properties']>;

/** A msg property that cannot be sent as its MQTT 5 property. */
export class InvalidPropertyError extends Error {
  constructor(readonly property: MsgProperty) {
    super(`msg.${property} cannot be sent as an MQTT 5 property`);
    this.name = 'InvalidPropertyError';
  }
}

/**
 * The MQTT 5 publish properties of a msg, validated; throws InvalidPropertyError for one that cannot
 * be sent. A property set on the node (`nodeProperties`) wins over the msg's, as in the core mqtt out
 * node, and the msg's is then not read.
 */
export function publishProperties(
  msg: PropertiesMessage,
  nodeProperties?: PublishProperties,
): PublishProperties | undefined {
  // Most msgs carry none: they cost five reads, not an object and a closure.
  if (
    msg.responseTopic === undefined &&
    msg.correlationData === undefined &&
    msg.contentType === undefined &&
    msg.messageExpiryInterval === undefined &&
    msg.userProperties === undefined
  )
    return nodeProperties && { ...nodeProperties };
  if (nodeProperties) msg = withoutNodeProperties(msg, nodeProperties);
  const properties: PublishProperties = { ...nodeProperties };
  const fail = (name: MsgProperty) => {
    throw new InvalidPropertyError(name);
  };
  if (msg.responseTopic !== undefined) {
    if (typeof msg.responseTopic !== 'string' || publishTopicProblem(msg.responseTopic))
      fail('responseTopic');
    properties.responseTopic = msg.responseTopic as string;
  }
  if (msg.correlationData !== undefined) {
    if (!Buffer.isBuffer(msg.correlationData) && typeof msg.correlationData !== 'string')
      fail('correlationData');
    properties.correlationData = Buffer.from(msg.correlationData as Buffer | string);
  }
  if (msg.contentType !== undefined) {
    if (typeof msg.contentType !== 'string') fail('contentType');
    properties.contentType = msg.contentType as string;
  }
  if (msg.messageExpiryInterval !== undefined) {
    const seconds = Number(msg.messageExpiryInterval);
    if (!Number.isInteger(seconds) || seconds < 0 || seconds > 0xffffffff) fail('messageExpiryInterval');
    properties.messageExpiryInterval = seconds;
  }
  if (msg.userProperties !== undefined) {
    const value = msg.userProperties;
    if (!value || typeof value !== 'object' || Array.isArray(value)) fail('userProperties');
    const userProperties: Record<string, string | string[]> = {};
    for (const [key, item] of Object.entries(value as object)) {
      userProperties[key] = Array.isArray(item) ? item.map(String) : String(item);
    }
    properties.userProperties = userProperties;
  }
  // At least one was given (see above), and each one given is set or refused.
  return properties;
}

/** The msg's properties that the node does not set. */
function withoutNodeProperties(msg: PropertiesMessage, node: PublishProperties): PropertiesMessage {
  const left: PropertiesMessage = {};
  for (const name of MSG_PROPERTIES) if (node[name] === undefined) left[name] = msg[name];
  return left;
}

/** The out node's settings for the MQTT 5 properties, named as the core mqtt out node names them. */
export interface PropertySettings {
  contentType?: string;
  respTopic?: string;
  correl?: string;
  /** A JSON object of strings (or lists of strings). */
  userProps?: string;
  /** Seconds. */
  expiry?: string | number;
}
export type PropertySetting = keyof PropertySettings;

/** An out node setting that cannot be sent as its MQTT 5 property. */
export class InvalidPropertySettingError extends Error {
  constructor(readonly setting: PropertySetting) {
    super(`${setting} cannot be sent as an MQTT 5 property`);
    this.name = 'InvalidPropertySettingError';
  }
}

/**
 * The properties an out node sets on every message ('' or absent: none), checked with the rules
 * msg properties follow; throws InvalidPropertySettingError for one that cannot be sent.
 */
export function nodePublishProperties(settings: PropertySettings): PublishProperties | undefined {
  const given = (value: unknown): value is string | number =>
    (typeof value === 'string' && value.trim() !== '') || typeof value === 'number';
  const asMsg: PropertiesMessage = {};
  const names: [PropertySetting, MsgProperty][] = [
    ['contentType', 'contentType'],
    ['respTopic', 'responseTopic'],
    ['correl', 'correlationData'],
    ['expiry', 'messageExpiryInterval'],
  ];
  for (const [setting, property] of names) if (given(settings[setting])) asMsg[property] = settings[setting];
  if (given(settings.userProps)) {
    try {
      asMsg.userProperties = JSON.parse(String(settings.userProps));
    } catch {
      throw new InvalidPropertySettingError('userProps');
    }
  }
  try {
    return publishProperties(asMsg);
  } catch (error) {
    if (!(error instanceof InvalidPropertyError)) throw error;
    const setting = names.find(([, property]) => property === error.property)?.[0] ?? 'userProps';
    throw new InvalidPropertySettingError(setting);
  }
}
