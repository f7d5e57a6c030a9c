/**
 * The dedupe nodes (keys held, copies passed, duplicates caught) and the quarantines of the in
 * nodes with `ack: complete` (each message with its last error, to release or to discard).
 */
import type { DedupeView, QuarantinedMessageView, QuarantineView } from '../../lib/monitor-protocol.js';
import { t } from '../common.js';
import {
  compactTable,
  count,
  element,
  nodeLabel,
  revealsNode,
  duration,
  setCells,
  setText,
  smallButton,
  syncChildren,
  tableRow,
} from './dom.js';
import { confirmAction, mayAct, monitorRequest } from './requests.js';

/** The dedupe nodes as one table, a row per node. */
export class DedupeTable {
  private readonly parts = compactTable([
    t('sidebar.dedupe.column.node'),
    t('sidebar.dedupe.column.keys'),
    t('sidebar.dedupe.column.passed'),
    t('sidebar.dedupe.column.duplicates'),
  ]);
  readonly root = this.parts.table.addClass('durable-mqtt-sidebar-dedupes');

  update(dedupes: DedupeView[]): void {
    syncChildren(
      this.parts.rows,
      dedupes,
      (dedupe) => dedupe.id,
      (dedupe) => revealsNode(tableRow(4), dedupe.id),
      (row, dedupe) =>
        setCells(row, [
          nodeLabel(dedupe.id, dedupe.name),
          count(dedupe.keys),
          count(dedupe.passed),
          count(dedupe.duplicates),
        ]),
    );
  }
}

/** An in node's quarantine: its messages, newest first, each with its actions. */
export class QuarantineCard {
  readonly root = element('div', 'durable-mqtt-sidebar-card durable-mqtt-sidebar-quarantine');
  private readonly title = element('span', 'durable-mqtt-sidebar-node');
  private readonly held = element('span', 'durable-mqtt-sidebar-badge');
  private readonly messages = element('div', 'durable-mqtt-sidebar-entries');
  private name = '';

  constructor(private readonly id: string) {
    this.root.attr('data-quarantine-id', id);
    revealsNode(
      element('div', 'durable-mqtt-sidebar-card-title').append(this.title, ' ', this.held),
      id,
    ).appendTo(this.root);
    this.root.append(this.messages);
  }

  update(quarantine: QuarantineView, now: number): void {
    this.name = nodeLabel(quarantine.id, quarantine.name);
    setText(this.title, this.name);
    setText(this.held, t('sidebar.quarantine.held', { count: count(quarantine.count) }));
    syncChildren(
      this.messages,
      quarantine.messages,
      (message) => message.key,
      (message) => this.messageEntry(message),
      (entry, message) => {
        const part = (name: string) => entry.find(`.durable-mqtt-sidebar-${name}`);
        setText(part('topic-name'), message.topic ?? '–');
        setText(part('attempts'), t('sidebar.quarantine.attempts', { count: count(message.attempts) }));
        setText(
          part('since'),
          t('sidebar.quarantine.since', { duration: duration((now - message.quarantinedAt) / 1000) }),
        );
        part('since').attr('title', new Date(message.quarantinedAt).toLocaleString());
        setText(part('error'), message.lastError ?? '');
      },
    );
  }

  /** A message: its topic, attempts and time in quarantine, its last error, and its actions. */
  private messageEntry(message: QuarantinedMessageView): JQuery {
    const entry = element('div', 'durable-mqtt-sidebar-entry');
    const head = element('div', 'durable-mqtt-sidebar-entry-head')
      .append(element('span', 'durable-mqtt-sidebar-topic-name'))
      .appendTo(entry);
    if (mayAct())
      element('span', 'durable-mqtt-sidebar-actions')
        .append(
          // A message too large for the node's kept bytes can only be discarded.
          message.releasable
            ? smallButton(t('sidebar.quarantine.release'), 'fa-play', () => void this.release(message.key))
            : '',
          smallButton(t('sidebar.quarantine.discard'), 'fa-trash', () => this.discard(message)),
        )
        .appendTo(head);
    element('div', 'durable-mqtt-sidebar-entry-line')
      .append(
        element('span', 'durable-mqtt-sidebar-attempts'),
        ', ',
        element('span', 'durable-mqtt-sidebar-since'),
      )
      .appendTo(entry);
    element('div', 'durable-mqtt-sidebar-entry-line durable-mqtt-sidebar-error').appendTo(entry);
    return entry;
  }

  private async release(key: string): Promise<void> {
    await monitorRequest(
      'POST',
      'releaseQuarantined',
      t('sidebar.quarantine.release-action', { node: this.name }),
      {
        id: this.id,
        body: { key },
      },
    );
  }

  private discard(message: QuarantinedMessageView): void {
    const question = t('sidebar.quarantine.confirm-discard', {
      topic: message.topic ?? '–',
      node: this.name,
    });
    confirmAction(question, t('sidebar.quarantine.discard'), () => {
      const action = t('sidebar.quarantine.discard-action', { node: this.name });
      void monitorRequest('POST', 'discardQuarantined', action, { id: this.id, body: { key: message.key } });
    });
  }
}
