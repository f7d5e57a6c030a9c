import type { Node, NodeAPI, NodeMessage } from 'node-red';
import { flowCompletion } from '../lib/completion-tracker.js';

/** Node-RED hook labels; hooks are global to the runtime, so they are added once. */
const DELIVER_HOOK = 'preDeliver.durable-mqtt-ack';
const COMPLETE_HOOK = 'onComplete.durable-mqtt-ack';
const CATCH_HOOK = 'onReceive.durable-mqtt-ack';

/**
 * Feeds the runtime's flow completion tracker (lib/completion-tracker.ts) from Node-RED's hooks:
 * each delivery and each completion of the messages in nodes with `ack: complete` follow, and
 * the errors their flows report.
 */
export function followFlowCompletion(RED: NodeAPI): void {
  const hooks = RED.hooks;
  if (hooks.has(DELIVER_HOOK)) return;
  hooks.add(DELIVER_HOOK, (event: { msg: NodeMessage }) =>
    flowCompletion.delivered(event.msg._msgid as string),
  );
  hooks.add(COMPLETE_HOOK, (event: { msg: NodeMessage; error?: unknown }) => {
    if (event.error !== undefined) flowCompletion.failed(event.msg._msgid as string, errorText(event.error));
    flowCompletion.completed(event.msg._msgid as string);
  });
  // A node that reports an error with node.error(err, msg) reaches the Catch nodes without a done(err).
  hooks.add(
    CATCH_HOOK,
    (event: { msg: NodeMessage & { error?: { message?: unknown } }; destination: { node: Node } }) => {
      if (event.destination.node.type === 'catch' && event.msg.error)
        flowCompletion.failed(event.msg._msgid as string, String(event.msg.error.message));
    },
  );
}

/**
 * An error as a node reported it: an Error (from the function node's sandbox too, another realm,
 * so not `instanceof Error`), or the text some nodes pass to done().
 */
function errorText(error: unknown): string {
  const message = (error as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? message : typeof error === 'string' ? error : JSON.stringify(error);
}
