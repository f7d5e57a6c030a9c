/**
 * A broker config's shared connection in the sidebar: its state and since when, where it connects,
 * its reconnections and last error, and the subscriptions it holds with the nodes that use them.
 */
import type { ConnectionView } from '../../lib/monitor-protocol.js';
import { t } from '../common.js';
import {
  compactTable,
  count,
  element,
  nodeLabel,
  revealsNode,
  setCells,
  setSince,
  setText,
  syncChildren,
  tableRow,
} from './dom.js';

/** The state's badge colour, as the nodes' statuses colour theirs. */
const STATE_COLOURS: Record<ConnectionView['state'], string> = {
  idle: 'grey',
  stopped: 'grey',
  connecting: 'yellow',
  connected: 'green',
  disconnected: 'red',
  closed: 'grey',
};

type Subscription = ConnectionView['subscriptions'][number];

function subscriptionRow(): JQuery {
  const row = tableRow(3);
  row.children('td').eq(2).addClass('durable-mqtt-sidebar-nodes');
  return row;
}

/** A subscription's row: its filter, QoS, and a link to each node that uses it. */
function updateSubscription(row: JQuery, subscription: Subscription): void {
  setCells(row, [subscription.filter, String(subscription.qos)]);
  const nodes = row.children('td').eq(2);
  const ids = subscription.nodes.join(' ');
  if (nodes.attr('data-nodes') === ids) return;
  nodes.attr('data-nodes', ids).empty();
  for (const id of subscription.nodes)
    revealsNode(element('span', 'durable-mqtt-sidebar-node', nodeLabel(id, '')), id).appendTo(nodes);
}

export class ConnectionCard {
  readonly root = element('div', 'durable-mqtt-sidebar-card durable-mqtt-sidebar-connection');
  private readonly title = element('span', 'durable-mqtt-sidebar-node');
  private readonly state = element('span', 'durable-mqtt-sidebar-state');
  private readonly details = element('table', 'red-ui-info-table durable-mqtt-sidebar-details');
  private readonly subscriptions = compactTable([
    t('sidebar.connection.column.filter'),
    t('sidebar.connection.column.qos'),
    t('sidebar.connection.column.nodes'),
  ]);

  constructor(id: string) {
    this.root.attr('data-connection-id', id);
    revealsNode(
      element('div', 'durable-mqtt-sidebar-card-title').append(this.title, ' ', this.state),
      id,
    ).appendTo(this.root);
    for (const key of ['endpoint', 'since', 'reconnects', 'last-error']) {
      const row = element('tr', `durable-mqtt-sidebar-${key}`).appendTo(this.details);
      element('td', '', t(`sidebar.connection.${key}`)).appendTo(row);
      element('td').appendTo(row);
    }
    this.root.append(this.details, this.subscriptions.table);
  }

  update(connection: ConnectionView, now: number): void {
    setText(this.title, nodeLabel(connection.id, connection.name));
    setText(this.state, t(`sidebar.connection.state.${connection.state}`));
    this.state.attr('data-state', connection.state).attr('data-colour', STATE_COLOURS[connection.state]);
    const value = (key: string) => this.details.find(`.durable-mqtt-sidebar-${key} td`).eq(1);
    setText(value('endpoint'), connection.endpoint);
    setSince(value('since'), connection.since, now);
    setText(value('reconnects'), count(connection.reconnects));
    setText(value('last-error'), connection.lastError ?? '–');
    this.subscriptions.table.toggle(connection.subscriptions.length > 0);
    syncChildren(
      this.subscriptions.rows,
      connection.subscriptions,
      (subscription) => subscription.filter,
      subscriptionRow,
      updateSubscription,
    );
  }
}
