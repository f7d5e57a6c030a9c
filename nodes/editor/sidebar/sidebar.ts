/**
 * The "durable mqtt" tab's content: a section per kind of node, each with a card (or a row) per
 * node of the snapshot, updated in place at each snapshot.
 */
import type { MonitorSnapshot } from '../../lib/monitor-protocol.js';
import { t } from '../common.js';
import { BrokerCard } from './brokers.js';
import { ConnectionCard } from './connections.js';
import { DedupeTable, QuarantineCard } from './dedupes-quarantines.js';
import { element, foldingSection, setText, syncChildren, type FoldingSection } from './dom.js';
import { OutboxCard } from './outboxes.js';

/** A section of cards, one per node of a kind, kept by node id across snapshots. */
class CardSection<View extends { id: string }, Card extends { root: JQuery }> {
  readonly section: FoldingSection;
  private readonly cards = new Map<string, Card>();
  private readonly list = element('div', 'durable-mqtt-sidebar-cards');
  private readonly empty: JQuery;

  constructor(
    kind: string,
    private readonly create: (id: string) => Card,
    private readonly update: (card: Card, view: View, now: number) => void,
  ) {
    this.section = foldingSection(t(`sidebar.section.${kind}`));
    this.section.root.addClass(`durable-mqtt-sidebar-${kind}`);
    this.empty = element('div', 'durable-mqtt-sidebar-empty', t(`sidebar.empty.${kind}`));
    this.section.body.append(this.empty, this.list);
  }

  render(views: View[], now: number): void {
    this.section.setCount(views.length);
    this.empty.toggle(views.length === 0);
    syncChildren(
      this.list,
      views,
      (view) => view.id,
      (view) => {
        const card = this.create(view.id);
        this.cards.set(view.id, card);
        return card.root;
      },
      (_root, view) => {
        const card = this.cards.get(view.id);
        if (card) this.update(card, view, now);
      },
    );
    for (const id of this.cards.keys()) if (!views.some((view) => view.id === id)) this.cards.delete(id);
  }
}

export class MonitorSidebar {
  readonly content = element('div', 'durable-mqtt-sidebar');
  private readonly sampled = element('div', 'red-ui-sidebar-header durable-mqtt-sidebar-sampled');
  private readonly brokers = new CardSection(
    'brokers',
    (id) => new BrokerCard(id),
    (card, view: MonitorSnapshot['brokers'][number], now) => card.update(view, now),
  );
  private readonly connections = new CardSection(
    'connections',
    (id) => new ConnectionCard(id),
    (card, view: MonitorSnapshot['connections'][number], now) => card.update(view, now),
  );
  private readonly outboxes = new CardSection(
    'outboxes',
    (id) => new OutboxCard(id),
    (card, view: MonitorSnapshot['outboxes'][number]) => card.update(view),
  );
  private readonly dedupes = foldingSection(t('sidebar.section.dedupes'));
  private readonly dedupeTable = new DedupeTable();
  private readonly dedupesEmpty = element('div', 'durable-mqtt-sidebar-empty', t('sidebar.empty.dedupes'));
  private readonly quarantines = new CardSection(
    'quarantines',
    (id) => new QuarantineCard(id),
    (card, view: MonitorSnapshot['quarantines'][number], now) => card.update(view, now),
  );

  constructor() {
    setText(this.sampled, t('sidebar.waiting'));
    const scroller = element('div', 'durable-mqtt-sidebar-scroller');
    this.dedupes.root.addClass('durable-mqtt-sidebar-dedupes-section');
    this.dedupes.body.append(this.dedupesEmpty, this.dedupeTable.root);
    scroller.append(
      this.brokers.section.root,
      this.connections.section.root,
      this.outboxes.section.root,
      this.dedupes.root,
      this.quarantines.section.root,
    );
    this.content.append(this.sampled, scroller);
  }

  render(snapshot: MonitorSnapshot): void {
    const now = snapshot.at;
    setText(this.sampled, t('sidebar.sampled', { time: new Date(now).toLocaleTimeString() }));
    this.brokers.render(snapshot.brokers, now);
    this.connections.render(snapshot.connections, now);
    this.outboxes.render(snapshot.outboxes, now);
    this.dedupes.setCount(snapshot.dedupes.length);
    this.dedupesEmpty.toggle(snapshot.dedupes.length === 0);
    this.dedupeTable.root.toggle(snapshot.dedupes.length > 0);
    this.dedupeTable.update(snapshot.dedupes);
    this.quarantines.render(snapshot.quarantines, now);
  }
}
