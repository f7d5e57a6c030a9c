/** The mqtt in node's dialog and canvas label. */
import { filterProblem } from '../lib/topic.js';
import { MAX_SUBSCRIBER_NAME_LENGTH } from '../lib/receipt-expectation.js';
import {
  OpenDialog,
  addDialogStyles,
  fitLabel,
  foldingSection,
  isOneOf,
  oneOf,
  readsAsWholeNumber,
  settingText,
  showWhile,
  registerType,
  t,
} from './common.js';
import { showMqtt5Rows } from './mqtt5-fields.js';

const TYPE = 'durable-mqtt-in';
const DATATYPES = ['auto-detect', 'utf8', 'buffer', 'json', 'base64'];
const QOS = ['0', '1', '2'];
/** MQTT 5 Retain Handling: send retained messages on each subscribe, on a new subscription only, never. */
const RETAIN_HANDLING = ['0', '1', '2'];
/** Deliveries of a message to a flow that does not finish with it before it is quarantined (ack: complete); 0: never. */
const DEFAULT_MAX_DELIVERIES = 5;

interface MqttInProperties {
  name: string;
  broker: string;
  topicType: string;
  topic: string;
  qos: string | number;
  datatype: string;
  ack: string;
  ackTimeout: string | number;
  unwrapEnvelope: boolean;
  subscriberName: string;
  maxDeliveries: string | number;
  nl: boolean;
  rap: boolean;
  rh: string | number;
  inputs: number;
}

/** Whether a flag of the flow is one the runtime reads: a boolean, or none (the default, false). */
function isFlag(value: unknown): boolean {
  return value === undefined || typeof value === 'boolean';
}

const dialog = new OpenDialog<MqttInProperties>('node-input');

addDialogStyles();
registerType<MqttInProperties>(TYPE, {
  category: 'durable mqtt',
  color: '#9fd4c8',
  // A property a flow lacks (written by an older version or by hand) takes the runtime's default:
  // validators accept undefined, and the dialog shows the default.
  defaults: {
    name: { value: '' },
    broker: { type: 'durable-mqtt-broker-config', required: true },
    topicType: {
      value: 'static',
      validate(value, _options) {
        return value === undefined || isOneOf(value, ['static', 'dynamic']) || t('validation.topic-type');
      },
    },
    topic: {
      value: '',
      validate(value, _options) {
        if (dialog.value(this, 'topicType') === 'dynamic') return true;
        // The runtime subscribes to the filter trimmed (nodes/mqtt-in.ts): check that one.
        const filter = settingText(value);
        if (filter === '') return t('validation.topic-required');
        const problem = filterProblem(filter);
        return !problem || t('validation.filter', { reason: t(`topic-problem.${problem}`) });
      },
    },
    qos: {
      value: '1',
      validate(value, _options) {
        return value === undefined || isOneOf(String(value), QOS) || t('validation.qos');
      },
    },
    datatype: {
      value: 'auto-detect',
      validate(value, _options) {
        return value === undefined || isOneOf(value, DATATYPES) || t('validation.datatype');
      },
    },
    ack: { value: 'receipt' },
    ackTimeout: {
      value: 60,
      validate(value, _options) {
        return value === undefined || Number(value) > 0 || t('validation.ack-timeout');
      },
    },
    unwrapEnvelope: { value: false },
    // The `by` of its receipts, which an out node's expect may list, separated by commas.
    subscriberName: {
      value: '',
      validate(value, _options) {
        const name = settingText(value);
        return (
          (name.length <= MAX_SUBSCRIBER_NAME_LENGTH && !name.includes(',')) ||
          t('validation.subscriber-name')
        );
      },
    },
    maxDeliveries: {
      value: DEFAULT_MAX_DELIVERIES,
      validate(value, _options) {
        return (
          value === undefined ||
          readsAsWholeNumber(value, 0, Number.MAX_SAFE_INTEGER) ||
          t('validation.max-deliveries')
        );
      },
    },
    // MQTT 5 subscription options: No Local, Retain As Published, Retain Handling.
    nl: {
      value: false,
      validate(value, _options) {
        return isFlag(value) || t('validation.flag');
      },
    },
    rap: {
      value: false,
      validate(value, _options) {
        return isFlag(value) || t('validation.flag');
      },
    },
    rh: {
      value: '0',
      validate(value, _options) {
        return (
          value === undefined || isOneOf(String(value), RETAIN_HANDLING) || t('validation.retain-handling')
        );
      },
    },
    inputs: { value: 0 },
  },
  inputs: 0,
  // The second: messages quarantined after maxDeliveries, which the flow no longer gets.
  outputs: 2,
  // Acknowledging once the flow has finished shows as the icon's badge rather than in the label.
  icon() {
    return this?.ack === 'complete' ? 'mqtt-in-complete.svg' : 'mqtt-in.svg';
  },
  paletteLabel: 'durable mqtt in',
  inputLabels() {
    return t('canvas.input-control');
  },
  outputLabels(index) {
    return t(index === 0 ? 'canvas.output-messages' : 'canvas.output-quarantined');
  },
  label() {
    if (this.name) return this.name;
    if (this.topicType === 'dynamic') return t('canvas.dynamic');
    return fitLabel(settingText(this.topic) || 'durable mqtt in');
  },
  labelStyle() {
    return this.name ? 'node_label_italic' : '';
  },
  oneditprepare() {
    dialog.open(this);
    const typeSelect = $('#node-input-topicType');
    typeSelect.val(this.topicType === 'dynamic' ? 'dynamic' : 'static');
    $('#node-input-qos').val(oneOf(String(this.qos), QOS, '1'));
    $('#node-input-datatype').val(oneOf(this.datatype, DATATYPES, 'auto-detect'));
    if (this.ackTimeout === undefined) $('#node-input-ackTimeout').val('60');
    if (this.maxDeliveries === undefined) $('#node-input-maxDeliveries').val(String(DEFAULT_MAX_DELIVERIES));
    // Receipts carry the node's name, else its id: what an empty field stands for, as its name changes.
    const name = $('#node-input-name');
    const showDefaultName = () =>
      void $('#node-input-subscriberName').attr('placeholder', String(name.val() || this.id));
    name.on('change keyup', showDefaultName);
    showDefaultName();
    const ackSelect = $('#node-input-ack');
    ackSelect.val(this.ack === 'complete' ? 'complete' : 'receipt');
    showWhile('.durable-mqtt-in-ack-complete', ackSelect, () => ackSelect.val() === 'complete');
    // One tip for each choice, which says what the chosen option does.
    showWhile('.durable-mqtt-tip-receipt', ackSelect, () => ackSelect.val() !== 'complete');
    showWhile('.durable-mqtt-tip-complete', ackSelect, () => ackSelect.val() === 'complete');
    const unwrap = $('#node-input-unwrapEnvelope');
    showWhile('.durable-mqtt-tip-wrapped', unwrap, () => !unwrap.is(':checked'));
    showWhile('.durable-mqtt-tip-unwrap', unwrap, () => unwrap.is(':checked'));
    $('#node-input-rh').val(oneOf(String(this.rh), RETAIN_HANDLING, '0'));
    foldingSection('#durable-mqtt-in-advanced');
    showMqtt5Rows(
      this.nl === true || this.rap === true || oneOf(String(this.rh), RETAIN_HANDLING, '0') !== '0',
    );
    showWhile('.durable-mqtt-in-static', typeSelect, () => typeSelect.val() !== 'dynamic');
    showWhile('.durable-mqtt-in-dynamic', typeSelect, () => typeSelect.val() === 'dynamic');
    typeSelect.on('change', () => $('#node-input-topic').trigger('change')); // required only for a fixed topic
  },
  oneditsave() {
    // A dynamic node takes control messages on an input; a fixed one has none.
    this.inputs = $('#node-input-topicType').val() === 'dynamic' ? 1 : 0;
    dialog.close();
  },
  oneditcancel() {
    dialog.close();
  },
  oneditdelete() {
    dialog.close();
  },
});
