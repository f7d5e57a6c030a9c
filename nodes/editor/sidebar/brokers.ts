/**
 * An embedded broker in the sidebar: its listeners, its rates, the clients connected, the
 * persistent sessions of the clients away, and its retained messages.
 */
import type { BrokerView, ClientView } from '../../lib/monitor-protocol.js';
import { t } from '../common.js';
import {
  compactTable,
  count,
  element,
  foldingSection,
  nodeLabel,
  revealsNode,
  setCells,
  setSince,
  setText,
  syncChildren,
  tableRow,
  type FoldingSection,
} from './dom.js';
import { RateChart } from './rate-chart.js';
import { RetainedBrowser } from './retained.js';

/** The MQTT version a CONNECT's protocol level stands for. */
const PROTOCOL_NAMES: Record<ClientView['protocolVersion'], string> = { 3: '3.1', 4: '3.1.1', 5: '5' };

/**
 * A client as a few short lines rather than a row of eight columns, which the sidebar's width
 * would squeeze into one word a line.
 */
function clientEntry(client: ClientView): JQuery {
  const entry = element('div', 'durable-mqtt-sidebar-entry durable-mqtt-sidebar-client').attr(
    'data-client-id',
    client.clientId,
  );
  element('div', 'durable-mqtt-sidebar-entry-head')
    .append(
      element('span', 'durable-mqtt-sidebar-client-id'),
      element('span', 'durable-mqtt-sidebar-badge durable-mqtt-sidebar-protocol'),
      element('span', 'durable-mqtt-sidebar-since'),
    )
    .appendTo(entry);
  for (const line of ['origin', 'messages', 'subscriptions'])
    element('div', `durable-mqtt-sidebar-entry-line durable-mqtt-sidebar-${line}`).appendTo(entry);
  return entry;
}

function updateClient(entry: JQuery, client: ClientView, now: number): void {
  const part = (name: string) => entry.find(`.durable-mqtt-sidebar-${name}`);
  setText(part('client-id'), client.clientId);
  setText(
    part('protocol'),
    t('sidebar.broker.protocol', {
      version: PROTOCOL_NAMES[client.protocolVersion] ?? client.protocolVersion,
    }),
  );
  setSince(part('since'), client.connectedSince, now);
  setText(
    part('origin'),
    t('sidebar.broker.origin', {
      user: client.user ?? t('sidebar.broker.anonymous'),
      address: client.address ?? t('sidebar.broker.in-process'),
      keepAlive: client.keepAlive,
    }),
  );
  setText(
    part('messages'),
    t('sidebar.broker.in-flight-queued', { inFlight: count(client.inFlight), queued: count(client.queued) }),
  );
  setText(
    part('subscriptions'),
    client.subscriptions.length
      ? t('sidebar.broker.subscriptions', {
          filters: client.subscriptions
            .map((subscription) => `${subscription.filter} (${subscription.qos})`)
            .join(', '),
        })
      : t('sidebar.broker.no-subscription'),
  );
}

export class BrokerCard {
  readonly root = element('div', 'durable-mqtt-sidebar-card durable-mqtt-sidebar-broker');
  private readonly title = element('span', 'durable-mqtt-sidebar-node');
  private readonly listeners = element('div', 'durable-mqtt-sidebar-line');
  private readonly chart = new RateChart();
  private readonly clients: FoldingSection;
  private readonly clientList = element('div', 'durable-mqtt-sidebar-entries');
  private readonly offline: FoldingSection;
  private readonly offlineRows: JQuery;
  private readonly retained: FoldingSection;

  constructor(id: string) {
    this.root.attr('data-broker-id', id);
    revealsNode(element('div', 'durable-mqtt-sidebar-card-title').append(this.title), id).appendTo(this.root);
    this.root.append(this.listeners, this.chart.root);

    this.clients = foldingSection(t('sidebar.broker.clients'), { nested: true });
    this.clients.body.append(this.clientList);
    this.clients.root.addClass('durable-mqtt-sidebar-clients').appendTo(this.root);

    this.offline = foldingSection(t('sidebar.broker.offline'), { nested: true, open: false });
    const offlineTable = compactTable([t('sidebar.broker.column.client'), t('sidebar.broker.column.queued')]);
    this.offlineRows = offlineTable.rows;
    this.offline.body.append(offlineTable.table);
    this.offline.root.addClass('durable-mqtt-sidebar-offline').appendTo(this.root);

    const browser = new RetainedBrowser(id);
    this.retained = foldingSection(t('sidebar.broker.retained'), {
      nested: true,
      open: false,
      onOpen: () => browser.opened(),
    });
    this.retained.body.append(browser.root);
    this.retained.root.addClass('durable-mqtt-sidebar-retained-section').appendTo(this.root);
  }

  update(broker: BrokerView, now: number): void {
    setText(this.title, nodeLabel(broker.id, broker.name));
    setText(
      this.listeners,
      broker.listeners.length
        ? t('sidebar.broker.listeners', {
            listeners: broker.listeners.map((listener) => `${listener.kind} ${listener.port}`).join(', '),
          })
        : t('sidebar.broker.no-listener'),
    );
    this.chart.update(broker.rates);
    this.clients.setCount(broker.clients.length);
    syncChildren(
      this.clientList,
      broker.clients,
      (client) => client.clientId,
      clientEntry,
      (entry, client) => updateClient(entry, client, now),
    );
    this.offline.setCount(broker.offlineSessions.length);
    syncChildren(
      this.offlineRows,
      broker.offlineSessions,
      (session) => session.clientId,
      () => tableRow(2),
      (row, session) => setCells(row, [session.clientId, count(session.queued)]),
    );
    this.retained.setCount(broker.retainedCount);
  }
}
