import path from 'node:path';
import type { Node, NodeAPI } from 'node-red';

/**
 * What a node keeps on disk: a broker's sessions, an out node's outbox, a dedupe node's seen-set,
 * the persistent session a broker config last had at its broker (see session-record.ts), an in
 * node's delivery counts and quarantine.
 */
export type NodeDataKind = 'broker' | 'outbox' | 'dedupe' | 'session' | 'quarantine';

/**
 * Where a node keeps its data, `<userDir>/durable-mqtt/<kind>/<node id>`, so that a redeploy
 * or a restart finds it again; undefined when the runtime has no user directory to keep it in.
 */
export function nodeDataDirectory(RED: NodeAPI, kind: NodeDataKind, node: Node): string | undefined {
  const userDir = RED.settings.userDir as string | undefined;
  return userDir ? path.join(userDir, 'durable-mqtt', kind, node.id) : undefined;
}
