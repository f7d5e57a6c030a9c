/** The mqtt out node's dialog and canvas label. */
import {
  OpenDialog,
  addDialogStyles,
  fitLabel,
  foldingSection,
  isOneOf,
  oneOf,
  publishTopicVerdict,
  readsAsWholeNumber,
  settingText,
  showWhile,
  registerType,
  t,
} from './common.js';
import {
  contentTypeVerdict,
  correlationDataVerdict,
  expiryVerdict,
  responseTopicVerdict,
  showMqtt5Rows,
  userPropertiesVerdict,
} from './mqtt5-fields.js';
import {
  DEFAULT_RECEIPT_TIMEOUT,
  UNTIL,
  expectVerdict,
  giveUpAfterVerdict,
  receiptTimeoutVerdict,
  receiptTopicVerdict,
  showReceiptRows,
} from './receipt-fields.js';
import { defaultReceiptTopic } from '../lib/receipt-expectation.js';
import type { NodeOf } from './editor-api.js';

const TYPE = 'durable-mqtt-out';
/** Persistence modes the runtime implements (it refuses others at deploy). */
const PERSISTENCE = ['none', 'queued', 'acknowledged'];
const MEGABYTE = 1024 * 1024;
/** The runtime's outbox bounds when a flow sets none. */
const DEFAULT_MAX_MESSAGES = 100000;
const DEFAULT_MAX_BYTES = 100 * MEGABYTE;
/** Where the topic comes from: the field ('str', empty for msg.topic), a msg property, an environment variable. */
const TOPIC_SOURCES = ['str', 'msg', 'env'];
const QOS = ['', '0', '1', '2'];
const RETAIN = ['', 'true', 'false'];

interface MqttOutProperties {
  name: string;
  broker: string;
  topic: string;
  topicType: string;
  qos: string | number;
  retain: string | boolean;
  persistence: string;
  maxMessages: string | number;
  maxBytes: string | number;
  overflow: string;
  messageId: boolean;
  messageIdEnvelope: boolean;
  until: string;
  expect: string;
  receiptTimeout: string | number;
  giveUpAfter: string | number;
  receiptTopic: string;
  contentType: string;
  respTopic: string;
  correl: string;
  userProps: string;
  expiry: string | number;
  outputs: number;
}

/** The MQTT 5 publish properties the node may set, '' each for none. */
const MQTT5_PROPERTIES = ['contentType', 'respTopic', 'correl', 'userProps', 'expiry'] as const;

const dialog = new OpenDialog<MqttOutProperties>('node-input');

/**
 * Whether `node` waits for its subscribers' receipts: the runtime reads their settings only then
 * (node-red/receipt-settings.ts), so the dialog checks them only then.
 */
function untilSubscriber(node: NodeOf<MqttOutProperties>): boolean {
  return dialog.value(node, 'persistence') === 'acknowledged' && dialog.value(node, 'until') === 'subscriber';
}

/** The end-to-end handlers of the dialog open now. */
let receiptRows: { restoreChosen(): void } | undefined;

/** A setting as the dialog shows it: '' for one the flow lacks. */
function choiceText(value: unknown): string {
  return String(value === undefined ? '' : value);
}

addDialogStyles();
registerType<MqttOutProperties>(TYPE, {
  category: 'durable mqtt',
  color: '#9fd4c8',
  // A property a flow lacks (written by an older version or by hand) takes the runtime's default:
  // validators accept undefined, and the dialog shows the default.
  defaults: {
    name: { value: '' },
    broker: { type: 'durable-mqtt-broker-config', required: true },
    topic: {
      value: '',
      validate(value, _options) {
        const topic = String(value === undefined || value === null ? '' : value).trim();
        switch (oneOf(dialog.value(this, 'topicType'), TOPIC_SOURCES, 'str')) {
          case 'msg':
            return RED.utils.validatePropertyExpression(topic) || t('validation.msg-property');
          case 'env':
            return topic !== '' || t('validation.env-variable');
        }
        // Empty: the topic comes from msg.topic (the runtime trims the node's topic).
        return !topic || publishTopicVerdict(t, topic);
      },
    },
    topicType: { value: 'str' },
    qos: {
      value: '',
      validate(value, _options) {
        const qos = choiceText(value);
        if (!isOneOf(qos, QOS)) return t('validation.qos');
        const mode = dialog.value(this, 'persistence');
        return !(mode === 'acknowledged' && qos === '0') || t('validation.qos-acknowledged');
      },
    },
    retain: {
      value: '',
      validate(value, _options) {
        return isOneOf(choiceText(value), RETAIN) || t('validation.retain');
      },
    },
    persistence: {
      value: 'none',
      validate(value, _options) {
        const mode = value || 'none';
        return isOneOf(mode, PERSISTENCE) || t('validation.persistence', { mode });
      },
    },
    maxMessages: {
      value: DEFAULT_MAX_MESSAGES,
      validate(value, _options) {
        return (
          value === undefined ||
          readsAsWholeNumber(value, 1, Number.MAX_SAFE_INTEGER) ||
          t('validation.max-messages')
        );
      },
    },
    maxBytes: {
      value: DEFAULT_MAX_BYTES,
      validate(value, _options) {
        return value === undefined || Number(value) > 0 || t('validation.max-megabytes');
      },
    },
    overflow: { value: 'rejectNew' },
    messageId: { value: false },
    messageIdEnvelope: { value: false },
    until: {
      value: 'broker',
      validate(value, _options) {
        return value === undefined || isOneOf(value, UNTIL) || t('validation.until');
      },
    },
    expect: {
      value: '',
      validate(value, _options) {
        return !untilSubscriber(this) || expectVerdict(t, value);
      },
    },
    receiptTimeout: {
      value: DEFAULT_RECEIPT_TIMEOUT,
      validate(value, _options) {
        return !untilSubscriber(this) || receiptTimeoutVerdict(t, value);
      },
    },
    giveUpAfter: {
      value: 0,
      validate(value, _options) {
        return !untilSubscriber(this) || giveUpAfterVerdict(t, value);
      },
    },
    receiptTopic: {
      value: '',
      validate(value, _options) {
        return !untilSubscriber(this) || receiptTopicVerdict(t, value);
      },
    },
    contentType: {
      value: '',
      validate(value, _options) {
        return contentTypeVerdict(t, value);
      },
    },
    respTopic: {
      value: '',
      validate(value, _options) {
        return responseTopicVerdict(t, value);
      },
    },
    correl: {
      value: '',
      validate(value, _options) {
        return correlationDataVerdict(t, value);
      },
    },
    userProps: {
      value: '',
      validate(value, _options) {
        return userPropertiesVerdict(t, value);
      },
    },
    expiry: {
      value: '',
      validate(value, _options) {
        return expiryVerdict(t, value);
      },
    },
    // Acknowledged delivery adds an output for receipts.
    outputs: { value: 0 },
  },
  inputs: 1,
  outputs: 0,
  align: 'right',
  // The persistence mode shows as the icon's badge rather than in the label, which stays short.
  icon() {
    const mode = this?.persistence;
    return mode === 'queued' || mode === 'acknowledged' ? `mqtt-out-${mode}.svg` : 'mqtt-out.svg';
  },
  paletteLabel: 'durable mqtt out',
  inputLabels() {
    return t('canvas.input-publish');
  },
  outputLabels() {
    return t(untilSubscriber(this) ? 'canvas.output-subscriber-receipts' : 'canvas.output-receipts');
  },
  label() {
    if (this.name) return this.name;
    const field = String(this.topic || '').trim();
    const source = oneOf(dialog.value(this, 'topicType'), TOPIC_SOURCES, 'str');
    const topic =
      source === 'msg' ? `msg.${field}` : source === 'env' ? `\${${field}}` : field || t('canvas.msg-topic');
    return fitLabel(topic);
  },
  labelStyle() {
    return this.name ? 'node_label_italic' : '';
  },
  oneditprepare() {
    dialog.open(this);
    $('#node-input-topic').typedInput({
      default: 'str',
      types: TOPIC_SOURCES,
      typeField: '#node-input-topicType',
    });
    $('#node-input-qos').val(oneOf(choiceText(this.qos), QOS, ''));
    $('#node-input-retain').val(oneOf(choiceText(this.retain), RETAIN, ''));

    // A mode from a newer version or a hand-edited flow stays visible, and marked invalid.
    const mode = this.persistence || 'none';
    const select = $('#node-input-persistence');
    if (!isOneOf(mode, PERSISTENCE)) {
      $('<option>').val(mode).text(t('persistence.unavailable', { mode })).appendTo(select);
    }
    select.val(mode);

    if (this.maxMessages === undefined) $('#node-input-maxMessages').val(String(DEFAULT_MAX_MESSAGES));
    $('#node-input-overflow').val(this.overflow === 'dropOldest' ? 'dropOldest' : 'rejectNew');
    const maxBytes = Number(this.maxBytes) > 0 ? Number(this.maxBytes) : DEFAULT_MAX_BYTES;
    $('#durable-mqtt-max-megabytes').val(String(Math.round((maxBytes / MEGABYTE) * 100) / 100));
    showWhile(
      '.durable-mqtt-outbox',
      select,
      () => select.val() === 'queued' || select.val() === 'acknowledged',
    );
    const until = $('#node-input-until');
    until.val(oneOf(this.until, UNTIL, 'broker'));
    if (this.receiptTimeout === undefined)
      $('#node-input-receiptTimeout').val(String(DEFAULT_RECEIPT_TIMEOUT));
    $('#node-input-receiptTopic').attr('placeholder', defaultReceiptTopic(this.id));
    // One tip, which says what the chosen mode does (with acknowledged, what it waits for).
    const waitsForSubscribers = () => select.val() === 'acknowledged' && until.val() === 'subscriber';
    for (const name of PERSISTENCE)
      showWhile(
        `.durable-mqtt-tip-${name}`,
        select.add(until),
        () => select.val() === name && !waitsForSubscribers(),
      );
    showWhile('.durable-mqtt-tip-subscriber', select.add(until), waitsForSubscribers);
    select.on('change', () => $('#node-input-qos').trigger('change')); // QoS 0 is refused with acknowledged
    // The end-to-end settings are checked only while they apply: again on each change of that.
    select.add(until).on('change', () => {
      for (const name of ['expect', 'receiptTimeout', 'giveUpAfter', 'receiptTopic'])
        $(`#node-input-${name}`).trigger('change');
    });
    const messageId = $('#node-input-messageId');
    showWhile('.durable-mqtt-message-id', messageId, () => messageId.is(':checked'));
    receiptRows = showReceiptRows();
    foldingSection('#durable-mqtt-out-advanced');
    showMqtt5Rows(MQTT5_PROPERTIES.some((name) => settingText(this[name]) !== ''));
  },
  oneditsave() {
    const topic = $('#node-input-topic');
    topic.typedInput('value', topic.typedInput('value').trim());
    dialog.close();
    const megabytes = Number($('#durable-mqtt-max-megabytes').val());
    $('#node-input-maxBytes').val(megabytes > 0 ? String(Math.round(megabytes * MEGABYTE)) : '');
    $('#node-input-outputs').val($('#node-input-persistence').val() === 'acknowledged' ? '1' : '0');
    receiptRows?.restoreChosen();
    receiptRows = undefined;
  },
  oneditcancel() {
    dialog.close();
    receiptRows = undefined;
  },
  oneditdelete() {
    dialog.close();
  },
});
