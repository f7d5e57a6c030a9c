import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { NodeStatusMessage } from './node-red-process.js';

const root = path.resolve(__dirname, '..', '..');

/** examples/01-hello-world.json as the package ships it. */
export const helloWorldExample: { id: string; type: string; [property: string]: unknown }[] = JSON.parse(
  readFileSync(path.join(root, 'examples', '01-hello-world.json'), 'utf8'),
);

/** Node ids of the hello-world example. */
export const HELLO = {
  broker: 'd0a1c0ffee000002',
  inject: 'd0a1c0ffee000004',
  out: 'd0a1c0ffee000005',
  in: 'd0a1c0ffee000006',
  debug: 'd0a1c0ffee000007',
} as const;

/** The English catalog of the package (the "durable-mqtt" namespace), for expected status texts. */
export const englishCatalog = JSON.parse(
  readFileSync(path.join(root, 'locales', 'en-US', 'messages.json'), 'utf8'),
)['durable-mqtt'];

/** The green "connected" status of an mqtt in/out node (a drop count may follow). */
export function isConnected(status: NodeStatusMessage): boolean {
  return status.fill === 'green' && status.text?.startsWith(englishCatalog.status.connected) === true;
}
