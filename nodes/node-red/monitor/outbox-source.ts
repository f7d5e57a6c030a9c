/**
 * An out node's outbox as the metrics and the monitor see it: registered while it is open, with
 * the two actions an admin may take on it, "retry now" and "purge" (logged with who purged).
 */
import type { Node, NodeAPI } from 'node-red';
import type { BrokerConnection } from '../../lib/connection/broker-connection.js';
import type { DurablePublisher } from '../../lib/outbox/durable-publisher.js';
import type { Translate } from '../i18n.js';
import { metricsEnabled } from './metrics.js';
import { countFates, reportOutboxSource, type OutboxSource } from './registry.js';

export interface ReportedOutbox {
  node: Node;
  t: Translate;
  publisher: DurablePublisher<unknown>;
  connection: BrokerConnection;
  /** The out node's settings: its broker config, and its persistence (`queued` or `acknowledged` here). */
  def: { broker: string; persistence?: string };
}

/**
 * Reports on an out node's outbox until the returned function is called. With the metrics on, its
 * messages' fates are counted from now; otherwise only while an editor's monitor watches.
 */
export function reportOutbox(
  RED: NodeAPI,
  { node, t, publisher, connection, def }: ReportedOutbox,
): () => void {
  const source: OutboxSource = {
    id: node.id,
    name: node.name || '',
    connectionId: def.broker,
    persistence: def.persistence === 'acknowledged' ? 'acknowledged' : 'queued',
    publisher,
    fates: undefined,
    retryNow() {
      // Waiting out its backoff: it tries now. Stopped on purpose (msg.action): it stays so.
      if (connection.state === 'disconnected') connection.connect().catch(() => undefined);
      publisher.retryNow();
    },
    async purge(by) {
      const count = await publisher.purge();
      node.warn(t('errors.outbox-purged', { count, user: by || t('errors.anonymous-user') }));
      return count;
    },
  };
  const stopCounting = metricsEnabled(RED) ? countFates(source) : () => undefined;
  const unregister = reportOutboxSource(source);
  return () => {
    unregister();
    stopCounting();
  };
}
