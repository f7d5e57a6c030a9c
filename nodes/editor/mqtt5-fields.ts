/**
 * The MQTT 5 settings of the in and out dialogs: the checks of the out node's publish properties,
 * and the rows that show only for a broker config with MQTT 5.
 */
import {
  type Translate,
  isWholeNumber,
  publishTopicVerdict,
  settingText,
  showWhile,
  usesMqtt5,
} from './common.js';

/** The most bytes of an MQTT 5 string or binary property (a two-byte length). */
const MAX_PROPERTY_BYTES = 65535;
/** The most seconds of a message expiry interval (a four-byte integer). */
const MAX_EXPIRY_SECONDS = 4294967295;

function utf8Length(text: string): number {
  return new TextEncoder().encode(text).length;
}

/** Content type: a UTF-8 string as MQTT 5 has them (no U+0000), '' for none. */
export function contentTypeVerdict(t: Translate, value: unknown): true | string {
  const text = value === undefined || value === null ? '' : String(value);
  return (!text.includes('\u0000') && utf8Length(text) <= MAX_PROPERTY_BYTES) || t('validation.content-type');
}

/** Response topic: a topic to publish to, '' for none; the runtime trims it as it does the node's topic. */
export function responseTopicVerdict(t: Translate, value: unknown): true | string {
  const topic = settingText(value);
  return !topic || publishTopicVerdict(t, topic, 'validation.response-topic');
}

/** Correlation data: sent as the bytes of the text, '' for none. */
export function correlationDataVerdict(t: Translate, value: unknown): true | string {
  const text = value === undefined || value === null ? '' : String(value);
  return utf8Length(text) <= MAX_PROPERTY_BYTES || t('validation.correlation-data');
}

/** User properties: a JSON object whose values are strings, '' for none. */
export function userPropertiesVerdict(t: Translate, value: unknown): true | string {
  const text = settingText(value);
  if (!text) return true;
  let properties: unknown;
  try {
    properties = JSON.parse(text);
  } catch {
    return t('validation.user-properties');
  }
  const isObject = typeof properties === 'object' && properties !== null && !Array.isArray(properties);
  return (
    (isObject && Object.values(properties as object).every((entry) => typeof entry === 'string')) ||
    t('validation.user-properties')
  );
}

/** Message expiry: whole seconds, '' for none. */
export function expiryVerdict(t: Translate, value: unknown): true | string {
  const text = settingText(value);
  return !text || isWholeNumber(text, 0, MAX_EXPIRY_SECONDS) || t('validation.expiry');
}

/**
 * Shows the MQTT 5 rows (`.durable-mqtt-v5`) while the chosen broker config uses MQTT 5, and the
 * note that they apply to MQTT 5 only (`.durable-mqtt-v5-note`) while it does not. Rows holding a
 * value stay shown whatever the broker, so that no setting is kept out of sight.
 */
export function showMqtt5Rows(anySet: boolean): void {
  const broker = $('#node-input-broker');
  const mqtt5 = () => usesMqtt5(broker.val());
  showWhile('.durable-mqtt-v5', broker, () => anySet || mqtt5());
  showWhile('.durable-mqtt-v5-note', broker, () => !mqtt5());
}
