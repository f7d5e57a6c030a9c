import type { NodeAPI } from 'node-red';

/** The part of Node-RED's tls-config node used here. */
export interface TlsConfigNode {
  /** "Verify server certificate"; a server reads it as "verify client certificates". */
  verifyservercert?: boolean;
  /** Writes the node's key, certificate, CA, passphrase and `rejectUnauthorized` into `options`. */
  addTLSOptions(options: object): void;
}

/** The deployed tls-config node of that id; undefined when there is none (not deployed, or no id). */
export function tlsConfigNode(RED: NodeAPI, id: string): TlsConfigNode | undefined {
  if (!id) return undefined;
  return (RED.nodes.getNode(id) as unknown as TlsConfigNode | null) ?? undefined;
}
