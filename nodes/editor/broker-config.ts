/** The broker config node's dialog and label: where to connect, the session, birth/close/will messages. */
import { readBoolean } from '../lib/config-values.js';
import {
  OpenDialog,
  addDialogStyles,
  createTabs,
  isOneOf,
  isWholeNumber,
  oneOf,
  publishTopicVerdict,
  settingText,
  registerType,
  t,
} from './common.js';
import { testConnection } from './connection-test.js';
import type { EditorNode, NodeOf } from './editor-api.js';

const TYPE = 'durable-mqtt-broker-config';
const PREFIX = 'node-config-input';
const TRANSPORTS = ['embedded', 'mqtt', 'mqtts', 'ws', 'wss'] as const;
type Transport = (typeof TRANSPORTS)[number];
type NetworkTransport = Exclude<Transport, 'embedded'>;
const DEFAULT_PORTS: Record<NetworkTransport, number> = { mqtt: 1883, mqtts: 8883, ws: 80, wss: 443 };
const EMBEDDED_TYPE = 'durable-mqtt-embedded-broker';
const LIFECYCLE_KINDS = ['birth', 'close', 'will'] as const;
type LifecycleKind = (typeof LIFECYCLE_KINDS)[number];
const QOS = ['0', '1', '2'];

/** The birth, close and will messages: a topic, a payload, a QoS and a retain flag each. */
type LifecycleProperties = {
  [Kind in LifecycleKind as `${Kind}Topic`]: string;
} & {
  [Kind in LifecycleKind as `${Kind}Payload`]: string;
} & {
  [Kind in LifecycleKind as `${Kind}Qos`]: string | number;
} & {
  [Kind in LifecycleKind as `${Kind}Retain`]: boolean | string;
};

type BrokerConfigProperties = LifecycleProperties & {
  name: string;
  transport: string;
  embedded: string;
  host: string;
  port: string | number;
  path: string;
  protocolVersion: string | number;
  clientId: string;
  keepalive: string | number;
  cleanSession: boolean | string;
  autoConnect: boolean | string;
  topicAliases: boolean | string;
  sessionExpiry: string | number;
  tls: string;
};
type BrokerConfigNode = NodeOf<BrokerConfigProperties>;

const dialog = new OpenDialog<BrokerConfigProperties>(PREFIX);

/** As the runtime reads it: a flow without a transport uses the embedded broker it names, else plain MQTT. */
function transportFrom(transport: unknown, embedded: unknown): Transport {
  if (isOneOf(transport, TRANSPORTS)) return transport;
  return embedded ? 'embedded' : 'mqtt';
}

function transportOf(node: BrokerConfigNode): Transport {
  return transportFrom(dialog.value(node, 'transport'), dialog.value(node, 'embedded'));
}

function lifecycleTopic(value: unknown, _options?: unknown): true | string {
  const topic = String(value || '').trim();
  return !topic || publishTopicVerdict(t, topic);
}

function embeddedBrokers(): EditorNode[] {
  const brokers: EditorNode[] = [];
  RED.nodes.eachNode((node) => {
    if (node.type === EMBEDDED_TYPE) brokers.push(node);
  });
  return brokers;
}

function embeddedLabel(id: string): string | null {
  const broker = RED.nodes.node(id);
  return broker ? RED.utils.getNodeLabel(broker, broker.id) : null;
}

function randomClientId(): string {
  const bytes = new Uint8Array(4);
  window.crypto.getRandomValues(bytes);
  return 'durable-mqtt-' + Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
}

function field(property: keyof BrokerConfigProperties): JQuery {
  return $(`#${PREFIX}-${property}`);
}

/** Fills the embedded broker list with the brokers of the whole workspace, by label. */
function listEmbeddedBrokers(node: BrokerConfigNode): void {
  const select = field('embedded');
  const brokers = embeddedBrokers();
  select.empty();
  $('<option>')
    .val('')
    .text(t(brokers.length ? 'placeholder.choose-embedded' : 'placeholder.no-embedded'))
    .appendTo(select);
  brokers
    .map((broker) => {
      const workspace = RED.nodes.workspace(broker.z) || RED.nodes.subflow(broker.z);
      let text = RED.utils.getNodeLabel(broker, broker.id);
      if (workspace) text += ' — ' + (workspace.label || workspace.name || workspace.id);
      if (broker.d) text += ' [' + t('canvas.disabled') + ']';
      return { id: broker.id, text };
    })
    .sort((a, b) => a.text.localeCompare(b.text))
    .forEach((broker) => $('<option>').val(broker.id).text(broker.text).appendTo(select));
  if (node.embedded && !brokers.some((broker) => broker.id === node.embedded)) {
    $('<option>').val(node.embedded).text(t('canvas.embedded-missing')).appendTo(select);
  }
  // An embedded config without a broker yet takes the only one in the flows, if there is only one.
  const onlyBroker =
    brokers.length === 1 && transportFrom(node.transport, node.embedded) === 'embedded' ? brokers[0].id : '';
  select.val(node.embedded || onlyBroker);
  $('#durable-mqtt-broker-no-embedded').data('none', brokers.length === 0);
}

/** Collapsible birth / close / will sections, opened when set (birth when none is). */
function foldLifecycleSections(node: BrokerConfigNode): void {
  const anySet = LIFECYCLE_KINDS.some((kind) => String(node[`${kind}Topic`] || '').trim());
  $('.durable-mqtt-broker-section').each(function () {
    const section = $(this);
    const kind = section.data('kind') as LifecycleKind;
    const twistie = section.find('.red-ui-palette-header i');
    const content = section.find('.section-content');
    function toggle(expanded: boolean) {
      twistie.toggleClass('expanded', expanded);
      content.toggle(expanded);
    }
    section.find('.red-ui-palette-header').on('click', (event) => {
      event.preventDefault();
      toggle(!twistie.hasClass('expanded'));
    });
    toggle(anySet ? !!String(node[`${kind}Topic`] || '').trim() : kind === 'birth');
  });
}

/** The rows and choices that depend on the transport, the protocol and the session. */
function showTransportRows(): void {
  const transport = field('transport').val();
  const embedded = transport === 'embedded';
  const protocolSelect = field('protocolVersion');
  $('.durable-mqtt-embedded-only').toggle(embedded);
  $('.durable-mqtt-network-only').toggle(!embedded);
  $('.durable-mqtt-ws-only').toggle(transport === 'ws' || transport === 'wss');
  $('.durable-mqtt-tls-only').toggle(transport === 'mqtts' || transport === 'wss');
  const noEmbedded = $('#durable-mqtt-broker-no-embedded');
  noEmbedded.toggle(embedded && noEmbedded.data('none'));
  const v5 = protocolSelect.val() === '5';
  $('.durable-mqtt-v5-only').toggle(v5);
  $('#durable-mqtt-broker-manual-connect').toggle(!field('autoConnect').prop('checked'));
  const clean = field('cleanSession').prop('checked');
  $('#durable-mqtt-broker-clean-label').text(t(v5 ? 'label.clean-start' : 'label.clean-session'));
  $('.durable-mqtt-session-expiry').toggle(v5 && !clean);
  const expiry = String(field('sessionExpiry').val()).trim();
  $('#durable-mqtt-broker-expiry-zero').toggle(v5 && !clean && (expiry === '' || Number(expiry) === 0));
}

addDialogStyles();
registerType<BrokerConfigProperties>(TYPE, {
  category: 'config',
  paletteLabel: 'durable mqtt broker',
  // A property a flow lacks (written by an older version or by hand) takes the runtime's default:
  // validators accept undefined, and the dialog shows the default.
  defaults: {
    name: { value: '' },
    transport: {
      value: 'embedded',
      validate(value, _options) {
        return value === undefined || isOneOf(value, TRANSPORTS) || t('validation.transport');
      },
    },
    embedded: {
      value: '',
      validate(value, _options) {
        if (transportOf(this) !== 'embedded') return true;
        if (!value) return t('validation.embedded');
        const broker = RED.nodes.node(String(value));
        return broker?.type === EMBEDDED_TYPE || t('validation.embedded-missing');
      },
    },
    host: {
      value: 'localhost',
      validate(value, _options) {
        return transportOf(this) === 'embedded' || String(value || '').trim() !== '' || t('validation.host');
      },
    },
    port: {
      value: 1883,
      validate(value, _options) {
        return (
          transportOf(this) === 'embedded' ||
          value === undefined ||
          isWholeNumber(value, 1, 65535) ||
          t('validation.port-client')
        );
      },
    },
    path: {
      value: '/mqtt',
      validate(value, _options) {
        const transport = transportOf(this);
        if (transport !== 'ws' && transport !== 'wss') return true;
        const path = String(value || '').trim();
        return path === '' || (path.startsWith('/') && !/\s/.test(path)) || t('validation.path');
      },
    },
    protocolVersion: {
      value: 4,
      validate(value, _options) {
        return value === undefined || isOneOf(String(value), ['3', '4', '5']) || t('validation.protocol');
      },
    },
    clientId: {
      value: '',
      validate(value, _options) {
        const clean = readBoolean(dialog.value(this, 'cleanSession'), true);
        return clean || String(value || '').trim() !== '' || t('validation.client-id');
      },
    },
    keepalive: {
      value: 60,
      validate(value, _options) {
        return value === undefined || isWholeNumber(value, 0, 65535) || t('validation.keepalive');
      },
    },
    cleanSession: { value: true },
    autoConnect: { value: true },
    topicAliases: { value: false },
    sessionExpiry: {
      value: 0,
      validate(value, _options) {
        return (
          settingText(value) === '' || isWholeNumber(value, 0, 4294967295) || t('validation.session-expiry')
        );
      },
    },
    tls: { type: 'tls-config', required: false },
    birthTopic: { value: '', validate: lifecycleTopic },
    birthPayload: { value: '' },
    birthQos: { value: '0' },
    birthRetain: { value: false },
    closeTopic: { value: '', validate: lifecycleTopic },
    closePayload: { value: '' },
    closeQos: { value: '0' },
    closeRetain: { value: false },
    willTopic: { value: '', validate: lifecycleTopic },
    willPayload: { value: '' },
    willQos: { value: '0' },
    willRetain: { value: false },
  },
  credentials: {
    user: { type: 'text' },
    password: { type: 'password' },
  },
  label() {
    if (this.name) return this.name;
    const transport = transportFrom(this.transport, this.embedded);
    if (transport === 'embedded') {
      if (!this.embedded) return t('canvas.embedded-none');
      const name = embeddedLabel(this.embedded);
      return name ? t('canvas.embedded', { name }) : t('canvas.embedded-missing');
    }
    const host = String(this.host || 'localhost').trim() || 'localhost';
    const port = settingText(this.port) || DEFAULT_PORTS[transport];
    const address = (host.includes(':') ? '[' + host + ']' : host) + ':' + port;
    if (transport === 'mqtt') return address;
    const path = transport === 'ws' || transport === 'wss' ? String(this.path || '').trim() || '/mqtt' : '';
    return transport + '://' + address + path;
  },
  oneditprepare() {
    const node = this;
    dialog.open(node);
    createTabs('node-config-durable-mqtt-broker-tabs', 'node-config-durable-mqtt-broker-tabs-content', [
      { id: 'durable-mqtt-broker-tab-connection', label: t('tabs.connection') },
      { id: 'durable-mqtt-broker-tab-security', label: t('tabs.security') },
      { id: 'durable-mqtt-broker-tab-messages', label: t('tabs.messages') },
    ]);
    listEmbeddedBrokers(node);

    // Booleans written as strings in older or hand-made flows.
    field('cleanSession').prop('checked', readBoolean(node.cleanSession, true));
    field('autoConnect').prop('checked', readBoolean(node.autoConnect, true));
    field('topicAliases').prop('checked', readBoolean(node.topicAliases, false));
    for (const kind of LIFECYCLE_KINDS) {
      field(`${kind}Retain`).prop('checked', readBoolean(node[`${kind}Retain`], false));
      const qos = node[`${kind}Qos`];
      field(`${kind}Qos`).val(oneOf(String(qos === undefined ? '0' : qos), QOS, '0'));
    }
    field('protocolVersion').val(oneOf(String(node.protocolVersion), ['3', '4', '5'], '4'));

    // A stable client ID, so a persistent session is found again after a restart.
    const clientIdInput = field('clientId');
    if (!String(node.clientId || '').trim()) clientIdInput.val(randomClientId());
    $('#durable-mqtt-broker-regenerate-client-id')
      .attr('title', t('label.regenerate'))
      .on('click', () => clientIdInput.val(randomClientId()).trigger('change'));

    $('#durable-mqtt-broker-test').on('click', () => testConnection(t, node.id, PREFIX));

    const transportSelect = field('transport');
    const portInput = field('port');
    transportSelect.val(transportFrom(node.transport, node.embedded));
    if (node.keepalive === undefined) field('keepalive').val('60');
    const chosen = transportFrom(node.transport, node.embedded);
    if (node.port === undefined && chosen !== 'embedded') portInput.val(DEFAULT_PORTS[chosen]);

    // The port follows the transport until the user sets one of their own.
    let lastNetworkTransport: NetworkTransport = chosen === 'embedded' ? 'mqtt' : chosen;
    function followDefaultPort(transport: Transport) {
      if (transport === 'embedded') return;
      const port = String(portInput.val()).trim();
      if (port === '' || Number(port) === DEFAULT_PORTS[lastNetworkTransport]) {
        portInput.val(DEFAULT_PORTS[transport]);
      }
      lastNetworkTransport = transport;
    }

    transportSelect.on('change', () => {
      followDefaultPort(transportFrom(transportSelect.val(), ''));
      showTransportRows();
      // Fields whose validity depends on the transport.
      for (const property of ['embedded', 'host', 'port', 'path', 'protocolVersion'] as const)
        field(property).trigger('change');
    });
    field('protocolVersion').on('change', showTransportRows);
    field('cleanSession').on('change', () => {
      showTransportRows();
      clientIdInput.trigger('change');
    });
    field('sessionExpiry').on('change keyup', showTransportRows);
    field('autoConnect').on('change', showTransportRows);
    foldLifecycleSections(node);
    showTransportRows();
  },
  oneditsave() {
    const transport = field('transport').val();
    // The runtime ignores TLS on other transports: do not keep a stale reference.
    if (transport !== 'mqtts' && transport !== 'wss') field('tls').val('_ADD_');
    for (const property of ['host', 'port', 'path', 'clientId', 'keepalive', 'sessionExpiry'] as const) {
      const input = field(property);
      input.val(String(input.val()).trim());
    }
    if (field('sessionExpiry').val() === '') field('sessionExpiry').val('0');
    dialog.close();
  },
  oneditcancel() {
    dialog.close();
  },
  oneditdelete() {
    dialog.close();
  },
});
