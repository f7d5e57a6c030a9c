/** The dedupe node's dialog and canvas label. */
import {
  OpenDialog,
  addDialogStyles,
  isOneOf,
  oneOf,
  readsAsWholeNumber,
  settingText,
  showWhile,
  registerType,
  t,
} from './common.js';

const TYPE = 'durable-mqtt-dedupe';
const KEYS = ['auto', 'property', 'payload'];
const SCOPES = ['global', 'topic'];
/** Same bound as the runtime (nodes/dedupe.ts). */
const MAX_ENTRIES_LIMIT = 10_000_000;

interface DedupeProperties {
  name: string;
  key: string;
  property: string;
  scope: string;
  window: string | number;
  maxEntries: string | number;
  persist: boolean | string;
}

const dialog = new OpenDialog<DedupeProperties>('node-input');

addDialogStyles();
registerType<DedupeProperties>(TYPE, {
  category: 'durable mqtt',
  color: '#9fd4c8',
  defaults: {
    name: { value: '' },
    key: {
      value: 'auto',
      validate(value, _options) {
        return isOneOf(value, KEYS) || t('validation.key');
      },
    },
    property: {
      value: 'payload.seq',
      validate(value, _options) {
        if (dialog.value(this, 'key') !== 'property') return true;
        const path = settingText(value);
        return (path !== '' && RED.utils.validatePropertyExpression(path)) || t('validation.property');
      },
    },
    scope: {
      value: 'global',
      validate(value, _options) {
        return isOneOf(value, SCOPES) || t('validation.scope');
      },
    },
    window: {
      value: 3600,
      validate(value, _options) {
        const text = value === undefined ? '' : String(value).trim();
        return (text !== '' && Number(text) >= 0) || t('validation.window');
      },
    },
    maxEntries: {
      value: 10000,
      validate(value, _options) {
        return readsAsWholeNumber(value, 1, MAX_ENTRIES_LIMIT) || t('validation.max-entries');
      },
    },
    persist: { value: false },
  },
  inputs: 1,
  outputs: 2,
  icon: 'dedupe.svg',
  paletteLabel: 'durable dedupe',
  inputLabels() {
    return t('canvas.input-dedupe');
  },
  outputLabels(index) {
    return index === 0 ? t('canvas.output-first') : t('canvas.output-duplicates');
  },
  label() {
    if (this.name) return this.name;
    const key = this.key === 'property' ? `msg.${this.property}` : this.key || 'auto';
    return `dedupe · ${key}`;
  },
  labelStyle() {
    return this.name ? 'node_label_italic' : '';
  },
  oneditprepare() {
    dialog.open(this);
    const keySelect = $('#node-input-key');
    keySelect.val(oneOf(this.key, KEYS, 'auto'));
    $('#node-input-scope').val(oneOf(this.scope, SCOPES, 'global'));
    $('#node-input-property').typedInput({ types: ['msg'] });
    showWhile('.durable-mqtt-dedupe-property', keySelect, () => keySelect.val() === 'property');
    keySelect.on('change', () => $('#node-input-property').trigger('change')); // required only for a property key
    const persist = $('#node-input-persist');
    showWhile('.durable-mqtt-dedupe-persist', persist, () => persist.is(':checked'));
  },
  oneditsave() {
    $('#node-input-property').val($('#node-input-property').typedInput('value').trim());
    dialog.close();
  },
  oneditcancel() {
    dialog.close();
  },
  oneditdelete() {
    dialog.close();
  },
});
