/** The embedded broker's dialog and canvas label: listeners, users, storage and limits. */
import {
  addDialogStyles,
  createTabs,
  isWholeNumber,
  settingText,
  showWhile,
  registerType,
  t,
} from './common.js';
import type { NodeOf, PropertyDefinition } from './editor-api.js';
import { prepareUsers, type BrokerAccount, type UserCredentials, type UserList } from './broker-users.js';

const TYPE = 'durable-mqtt-embedded-broker';

interface EmbeddedBrokerProperties {
  name: string;
  port: string | number;
  bind: string;
  wsPath: string;
  persistence: string;
  redisUrl: string;
  tls: string;
  tlsPort: string | number;
  wssPort: string | number;
  accounts: BrokerAccount[];
  allowAnonymous: boolean | string;
  allowAnonymousFromNetwork: boolean | string;
  anonymousPublish: string;
  anonymousSubscribe: string;
  maxConnections: string | number;
  maxPacketSize: string | number;
  maxTopicLevels: string | number;
  connectTimeout: string | number;
  maxKeepAlive: string | number;
  refuseControlCharacters: boolean | string;
  sysTopics: boolean | string;
  sysInterval: string | number;
  maxOfflineMessages: string | number;
}
type EmbeddedBrokerNode = NodeOf<EmbeddedBrokerProperties>;

/** The user list of the open dialog. */
let users: UserList | undefined;

/** The TCP port the runtime will use: 0 means no listener (the runtime reads an empty value as 1883). */
function effectivePort(value: unknown): number {
  const text = settingText(value);
  if (text === '') return 1883;
  const port = Number(text);
  return Number.isFinite(port) ? port : 1883;
}

/** A port, or empty: saved as 0, no listener. */
function isPortOrEmpty(value: unknown): boolean {
  return settingText(value) === '' || isWholeNumber(value, 0, 65535);
}

/** A setting holding a whole number from `low` to `high`, with its default; empty (a flow from before the setting) takes the default. */
function wholeNumberSetting(
  defaultValue: number,
  low: number,
  high: number,
  validationKey: string,
): PropertyDefinition<EmbeddedBrokerNode> {
  return {
    value: defaultValue,
    validate(value, _options) {
      return settingText(value) === '' || isWholeNumber(value, low, high) || t(`validation.${validationKey}`);
    },
  };
}

/** A setting holding a port, with its default; empty means no listener. */
function portSetting(defaultValue: number | string): PropertyDefinition<EmbeddedBrokerNode> {
  return {
    value: defaultValue,
    validate(value, _options) {
      return isPortOrEmpty(value) || t('validation.port');
    },
  };
}

/** The settings a flow from before them lacks: the dialog shows the defaults the runtime uses. */
const SHOWN_WITH_DEFAULTS = [
  'persistence',
  'tlsPort',
  'anonymousPublish',
  'anonymousSubscribe',
  'maxConnections',
  'maxPacketSize',
  'maxTopicLevels',
  'connectTimeout',
  'maxKeepAlive',
  'maxOfflineMessages',
  'sysInterval',
] as const;

/** The tips under the listener settings, which follow what is typed. */
function showListenerTips(node: EmbeddedBrokerNode): void {
  const tls = $('#node-input-tls');
  showWhile('.durable-mqtt-embedded-tls-only', tls, () => {
    const chosen = String(tls.val() || '');
    return chosen !== '' && chosen !== '_ADD_';
  });

  const bindSelect = $('#node-input-bind');
  const bind = String(node.bind || '').trim() || '127.0.0.1';
  // An address set outside this dialog (e.g. in the flow file) stays selectable.
  if (!bindSelect.find('option').filter((_, option) => (option as HTMLOptionElement).value === bind).length) {
    $('<option>')
      .val(bind)
      .text(t('bind.other', { address: bind }))
      .appendTo(bindSelect);
  }
  bindSelect.val(bind);
  showWhile('#durable-mqtt-embedded-bind-warning', bindSelect, () => {
    const value = bindSelect.val();
    return value !== '127.0.0.1' && value !== '::1';
  });

  const portInput = $('#node-input-port');
  showWhile(
    '#durable-mqtt-embedded-port-zero',
    portInput,
    () => {
      const text = String(portInput.val()).trim();
      return text === '' || Number(text) === 0;
    },
    'change keyup',
  );

  const wsInput = $('#node-input-wsPath');
  function updateWsUrl() {
    const path = String(wsInput.val()).trim();
    const row = $('#durable-mqtt-embedded-ws-url');
    if (!path) return void row.hide();
    const root = String(RED.settings.httpNodeRoot || '/').replace(/\/$/, '');
    const scheme = window.location.protocol === 'https:' ? 'wss://' : 'ws://';
    const url = scheme + window.location.host + root + '/' + path.replace(/^\//, '');
    row.find('span').text(t('tip.ws-url', { url }));
    row.show();
  }
  wsInput.on('change keyup', updateWsUrl);
  updateWsUrl();
}

addDialogStyles();
registerType<EmbeddedBrokerProperties>(TYPE, {
  category: 'durable mqtt',
  color: '#9fd4c8',
  defaults: {
    name: { value: '' },
    port: portSetting(1883),
    bind: {
      value: '127.0.0.1',
      validate(value, _options) {
        return String(value || '').trim() !== '' || t('validation.bind');
      },
    },
    wsPath: {
      value: '',
      validate(value, _options) {
        return !/[\s?#]/.test(String(value || '')) || t('validation.ws-path');
      },
    },
    persistence: { value: 'memory' },
    redisUrl: {
      value: 'redis://127.0.0.1:6379/0',
      validate(value, _options) {
        // Read with persistence "redis" only; empty takes redis://127.0.0.1:6379.
        const text = String(value || '').trim();
        return (
          this.persistence !== 'redis' ||
          text === '' ||
          /^rediss?:\/\/\S+$/.test(text) ||
          t('validation.redis-url')
        );
      },
    },
    tls: { type: 'tls-config', required: false },
    tlsPort: portSetting(8883),
    wssPort: portSetting(''),
    accounts: {
      value: [],
      validate(value, _options) {
        const names = (Array.isArray(value) ? value : []).map((user) => user?.username);
        const valid = names.every(
          (name, index) => typeof name === 'string' && name !== '' && names.indexOf(name) === index,
        );
        return valid || t('validation.users');
      },
    },
    allowAnonymous: { value: true },
    allowAnonymousFromNetwork: { value: false },
    anonymousPublish: { value: '#' },
    anonymousSubscribe: { value: '#' },
    maxConnections: wholeNumberSetting(1000, 1, Number.MAX_SAFE_INTEGER, 'max-connections'),
    maxPacketSize: wholeNumberSetting(1048576, 128, 268435460, 'max-packet-size'),
    maxTopicLevels: wholeNumberSetting(100, 1, 100, 'max-topic-levels'),
    connectTimeout: wholeNumberSetting(10, 1, 3600, 'connect-timeout'),
    maxKeepAlive: wholeNumberSetting(0, 0, 65535, 'max-keepalive'),
    refuseControlCharacters: { value: false },
    sysTopics: { value: false },
    sysInterval: wholeNumberSetting(10, 1, 86400, 'sys-interval'),
    maxOfflineMessages: wholeNumberSetting(10000, 0, Number.MAX_SAFE_INTEGER, 'max-offline-messages'),
  },
  credentials: {
    passwords: { type: 'text' },
    user: { type: 'text' },
    password: { type: 'password' },
    redisPassword: { type: 'password' },
  },
  inputs: 0,
  outputs: 0,
  icon: 'broker.svg',
  paletteLabel: 'embedded broker',
  label() {
    if (this.name) return this.name;
    const port = effectivePort(this.port);
    if (port === 0) return t('canvas.broker-in-process');
    const bind = String(this.bind || '127.0.0.1').trim();
    if (bind === '127.0.0.1') return t('canvas.broker-port', { port });
    const address = bind.includes(':') ? '[' + bind + ']:' + port : bind + ':' + port;
    return t('canvas.broker-address', { address });
  },
  labelStyle() {
    return this.name ? 'node_label_italic' : '';
  },
  oneditprepare() {
    for (const name of SHOWN_WITH_DEFAULTS) {
      if (this[name] === undefined) $(`#node-input-${name}`).val(String(this._def.defaults[name].value));
    }
    createTabs('node-input-durable-mqtt-embedded-tabs', 'node-input-durable-mqtt-embedded-tabs-content', [
      { id: 'durable-mqtt-embedded-tab-connection', label: t('tabs.connection') },
      { id: 'durable-mqtt-embedded-tab-security', label: t('tabs.security') },
      { id: 'durable-mqtt-embedded-tab-limits', label: t('tabs.limits') },
    ]);
    const persistenceSelect = $('#node-input-persistence');
    showWhile(
      '#durable-mqtt-embedded-persistence-disk',
      persistenceSelect,
      () => persistenceSelect.val() === 'disk',
    );
    showWhile('.durable-mqtt-embedded-redis', persistenceSelect, () => persistenceSelect.val() === 'redis');
    users = prepareUsers(t, this.accounts, this.allowAnonymous, (this.credentials ?? {}) as UserCredentials);
    showListenerTips(this);
  },
  oneditsave() {
    if (users) {
      const saved = users.save();
      this.accounts = saved.accounts;
      $('#node-input-passwords').val(saved.passwords);
      $('#node-input-user').val(saved.legacyUser);
      $('#node-input-password').val(saved.legacyUser ? '__PWRD__' : '');
    }
    users = undefined;

    // An empty port means "no TCP listener": save it as 0 so the runtime does not fall back to 1883.
    // Empty TLS ports mean "none", as for the TCP port.
    for (const id of ['#node-input-port', '#node-input-tlsPort', '#node-input-wssPort']) {
      const text = String($(id).val()).trim();
      $(id).val(text === '' ? '0' : text);
    }
    $('#node-input-wsPath').val(String($('#node-input-wsPath').val()).trim());
  },
  oneditcancel() {
    users?.close();
    users = undefined;
  },
  oneditdelete() {
    users?.close();
    users = undefined;
  },
});
