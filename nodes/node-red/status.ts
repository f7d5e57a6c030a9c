import type { Node, NodeMessageInFlow, NodeStatus } from 'node-red';
import type { ConnectionStatus } from '../lib/connection/types.js';
import { describeReason } from './disconnect-reason.js';
import type { Translate } from './i18n.js';

// The canvas status vocabulary: one colour and shape per meaning, the same in every node.

/** Works as configured. */
export function workingStatus(text: string): NodeStatus {
  return { fill: 'green', shape: 'dot', text };
}

/** Works, but is dropping messages (a bound was reached). */
export function droppingStatus(text: string): NodeStatus {
  return { fill: 'yellow', shape: 'dot', text };
}

/** Works, but in a way the user should know is unsafe (a broker open to the network). */
export function exposedStatus(text: string): NodeStatus {
  return { fill: 'yellow', shape: 'dot', text };
}

/** On its way: connecting. */
export function waitingStatus(text: string): NodeStatus {
  return { fill: 'yellow', shape: 'ring', text };
}

/** Does not work; the text says why. */
export function failedStatus(text: string): NodeStatus {
  return { fill: 'red', shape: 'ring', text };
}

/** Stopped on purpose. */
export function closedStatus(text: string): NodeStatus {
  return { fill: 'grey', shape: 'ring', text };
}

/** The canvas status of a node using a connection; `extra` (e.g. a drop count) is appended. */
export function connectionNodeStatus(t: Translate, status: ConnectionStatus, extra?: string): NodeStatus {
  const suffix = extra ? ` · ${extra}` : '';
  switch (status.state) {
    case 'connected':
      return workingStatus(t('status.connected') + suffix);
    case 'connecting':
    case 'idle':
      return waitingStatus(t('status.connecting') + suffix);
    case 'disconnected': {
      const reason = status.reason ? describeReason(t, status.reason) : '';
      const text = reason ? t('status.disconnected-reason', { reason }) : t('status.disconnected');
      return failedStatus(text + suffix);
    }
    case 'stopped':
      return closedStatus(t('status.waiting-for-connect') + suffix);
    case 'closed':
      return closedStatus(t('status.disconnected') + suffix);
  }
}

/**
 * A node that cannot work as configured: a red status, the reason in the log, and every msg
 * it is sent done with that reason, so Catch nodes see it too.
 */
export function failAllInput(node: Node, text: string): void {
  node.status(failedStatus(text));
  node.error(text);
  node.on('input', (_msg: NodeMessageInFlow, _send, done) => done(new Error(text)));
}

/** Status updates of a busy node, at most this often (ms). */
const STATUS_INTERVAL = 250;

/** `show` run at most once per STATUS_INTERVAL however often `soon()` is called; `cancel()` when the node closes. */
export function throttledStatus(show: () => void): { soon: () => void; cancel: () => void } {
  let timer: NodeJS.Timeout | undefined;
  return {
    soon: () => {
      timer ??= setTimeout(() => {
        timer = undefined;
        show();
      }, STATUS_INTERVAL);
    },
    cancel: () => clearTimeout(timer),
  };
}
