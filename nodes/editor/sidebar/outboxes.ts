/**
 * The out nodes' outboxes in the sidebar: what each holds, how fast it delivers, what it dropped
 * or the broker refused, and the actions "retry now" and "purge" (after a confirmation).
 */
import type { OutboxView } from '../../lib/monitor-protocol.js';
import { t } from '../common.js';
import {
  bytes,
  count,
  duration,
  element,
  nodeLabel,
  rate,
  revealsNode,
  setText,
  smallButton,
} from './dom.js';
import { confirmAction, failed, mayAct, monitorRequest } from './requests.js';

const FIGURES = ['messages', 'bytes', 'oldest', 'delivery', 'dropped-refused'] as const;

export class OutboxCard {
  readonly root = element('div', 'durable-mqtt-sidebar-card durable-mqtt-sidebar-outbox');
  private readonly title = element('span', 'durable-mqtt-sidebar-node');
  private readonly persistence = element('span', 'durable-mqtt-sidebar-badge');
  private readonly figures = element('table', 'red-ui-info-table durable-mqtt-sidebar-details');
  private name = '';

  constructor(private readonly id: string) {
    this.root.attr('data-outbox-id', id);
    const title = element('div', 'durable-mqtt-sidebar-card-title').append(this.title, ' ', this.persistence);
    if (mayAct()) {
      const actions = element('span', 'durable-mqtt-sidebar-actions').appendTo(title);
      smallButton(
        t('sidebar.outbox.retry'),
        'fa-repeat',
        () => void this.retry(),
        t('sidebar.outbox.retry-tip'),
      )
        .addClass('durable-mqtt-sidebar-retry')
        .appendTo(actions);
      smallButton(t('sidebar.outbox.purge'), 'fa-trash', () => this.purge(), t('sidebar.outbox.purge-tip'))
        .addClass('durable-mqtt-sidebar-purge')
        .appendTo(actions);
    }
    revealsNode(title, id).appendTo(this.root);
    for (const figure of FIGURES) {
      const row = element('tr', `durable-mqtt-sidebar-${figure}`).appendTo(this.figures);
      element('td', '', t(`sidebar.outbox.${figure}`)).appendTo(row);
      element('td').appendTo(row);
    }
    this.root.append(this.figures);
  }

  update(outbox: OutboxView): void {
    this.name = nodeLabel(outbox.id, outbox.name);
    setText(this.title, this.name);
    setText(this.persistence, t(`persistence.${outbox.persistence}`));
    const value = (figure: (typeof FIGURES)[number]) =>
      this.figures.find(`.durable-mqtt-sidebar-${figure} td`).eq(1);
    setText(
      value('messages'),
      t('sidebar.outbox.messages-in-flight', {
        messages: count(outbox.messages),
        inFlight: count(outbox.inFlight),
      }),
    );
    value('messages').attr('data-messages', outbox.messages);
    setText(value('bytes'), bytes(outbox.bytes));
    setText(value('oldest'), outbox.messages ? duration(outbox.oldestAgeSeconds) : '–');
    setText(
      value('delivery'),
      t('sidebar.outbox.delivered', {
        rate: rate(outbox.deliveredPerSecond),
        total: count(outbox.delivered),
      }),
    );
    setText(
      value('dropped-refused'),
      t('sidebar.outbox.dropped-refused-counts', {
        dropped: count(outbox.dropped),
        refused: count(outbox.refused),
      }),
    );
  }

  private async retry(): Promise<void> {
    await monitorRequest('POST', 'retryOutbox', t('sidebar.outbox.retry-action', { node: this.name }), {
      id: this.id,
    });
  }

  private purge(): void {
    confirmAction(
      t('sidebar.outbox.confirm-purge', { node: this.name }),
      t('sidebar.outbox.purge'),
      async () => {
        const answer = await monitorRequest<{ purged: number }>(
          'POST',
          'purgeOutbox',
          t('sidebar.outbox.purge-action', { node: this.name }),
          { id: this.id },
        );
        if (answer !== failed && answer)
          RED.notify(
            $('<p>').text(t('sidebar.outbox.purged', { count: count(answer.purged), node: this.name })),
            {
              type: 'success',
            },
          );
      },
    );
  }
}
