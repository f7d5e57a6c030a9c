/** The mqtt in node's dialog and canvas label. */
import { filterProblem } from '../lib/topic.js';
import {
  OpenDialog,
  addDialogStyles,
  isOneOf,
  oneOf,
  settingText,
  showWhile,
  registerType,
  t,
} from './common.js';

const TYPE = 'durable-mqtt-in';
const DATATYPES = ['auto-detect', 'utf8', 'buffer', 'json', 'base64'];
const QOS = ['0', '1', '2'];

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
  inputs: number;
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
    inputs: { value: 0 },
  },
  inputs: 0,
  outputs: 1,
  icon: 'mqtt-in.svg',
  paletteLabel: 'durable mqtt in',
  inputLabels() {
    return t('canvas.input-control');
  },
  outputLabels() {
    return t('canvas.output-messages');
  },
  label() {
    if (this.name) return this.name;
    const qos = oneOf(String(this.qos), QOS, '1');
    const what = this.topicType === 'dynamic' ? t('canvas.dynamic') : this.topic || 'durable mqtt in';
    return `${what} · ${t('canvas.qos', { qos })}`;
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
    const ackSelect = $('#node-input-ack');
    ackSelect.val(this.ack === 'complete' ? 'complete' : 'receipt');
    showWhile('.durable-mqtt-in-ack-complete', ackSelect, () => ackSelect.val() === 'complete');
    const unwrap = $('#node-input-unwrapEnvelope');
    showWhile('.durable-mqtt-in-unwrap', unwrap, () => unwrap.is(':checked'));
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
