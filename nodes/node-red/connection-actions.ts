import type { BrokerConnection } from '../lib/connection/broker-connection.js';
import type { Translate } from './i18n.js';

/** The msg.action values that the in and out nodes take for their connection, as the core mqtt nodes do. */
export const CONNECTION_ACTIONS = ['connect', 'disconnect'] as const;
export type ConnectionAction = (typeof CONNECTION_ACTIONS)[number];

export function isConnectionAction(action: unknown): action is ConnectionAction {
  return (CONNECTION_ACTIONS as readonly unknown[]).includes(action);
}

/** What an action needs of the broker config node. */
interface ActionTarget {
  connection: BrokerConnection;
  override(brokerMsg: unknown): Promise<void>;
}

/**
 * `connect`: applies msg.broker when there is one (see BrokerConfigNode.override), opens the shared
 * connection and settles once it is up, or with the reason its first attempt failed (it keeps
 * retrying). `disconnect`: closes it for every node of the config, until the next connect; durable
 * outboxes keep what they are given meanwhile. Rejects with a translated error.
 */
export async function runConnectionAction(
  t: Translate,
  action: ConnectionAction,
  msg: { broker?: unknown },
  target: ActionTarget,
): Promise<void> {
  if (action === 'disconnect') return target.connection.disconnect();
  if (msg.broker !== undefined) await target.override(msg.broker);
  try {
    await target.connection.connect();
  } catch (error) {
    throw new Error(t('errors.connect-action-failed', { reason: (error as Error).message }));
  }
}
