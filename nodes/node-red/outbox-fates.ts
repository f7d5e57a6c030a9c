import type { Node, NodeMessage } from 'node-red';
import type { DurablePublisher, Receipt } from '../lib/outbox/durable-publisher.js';
import type { EndToEndReceipt } from '../lib/outbox/receipt-waiter.js';
import type { StoredRecord } from '../lib/outbox/store.js';
import type { DropCount } from './drop-count.js';
import type { Translate } from './i18n.js';
import type { LiveMessage } from './out-settings.js';
import { parseStoredMessage } from './stored-message.js';

/** What an out node needs to tell each message's fate: its receipt output, done(), the log, the status. */
export interface FateReporting {
  node: Node;
  t: Translate;
  cloneMessage: (msg: NodeMessage) => NodeMessage;
  /** `acknowledged`: receipts go to the output; the other modes have none. */
  tellsReceipts: boolean;
  /** Messages refused or lost to a bound. */
  dropped: DropCount;
  /** Messages whose receipts said no for good, or did not come in time (`until: subscriber`). */
  undelivered: Map<'rejected' | 'expired', number>;
  /** The counts in the status changed. */
  changed: () => void;
}

/** The msg a receipt or an error is about: the live one, or the one stored before a restart. */
function messageOf(record: StoredRecord, live: LiveMessage | undefined): NodeMessage {
  return (
    live?.msg ??
    parseStoredMessage(record.msg, record.payload) ?? { topic: record.topic, payload: record.payload }
  );
}

/**
 * Tells the fate of each message of an outbox: a receipt on the output, or an error to done()
 * (the live msg) or to the log (a msg stored before a restart), so no message leaves unseen.
 */
export function reportFates(
  publisher: DurablePublisher<LiveMessage> | DurablePublisher<never>,
  { node, t, cloneMessage, tellsReceipts, dropped, undelivered, changed }: FateReporting,
): void {
  publisher.on('changed', changed);
  publisher.on('delivered', (receipt: Receipt, record, live) => {
    if (!tellsReceipts) return;
    const msg = messageOf(record, live) as NodeMessage & { delivery?: Receipt };
    msg.delivery = receipt;
    if (live) {
      live.send(msg);
      live.done();
    } else {
      node.send(msg);
    }
  });
  publisher.on('end-to-end', (receipt: EndToEndReceipt, record, live) => {
    const msg = messageOf(record, live) as NodeMessage & { delivery?: EndToEndReceipt };
    msg.delivery = receipt;
    // A negative receipt: told on the output, and the message stays, to be sent again.
    if (receipt.status === 'failed') {
      if (live) live.send(cloneMessage(msg));
      else node.send(cloneMessage(msg));
      return;
    }
    let problem: Error | undefined;
    if (receipt.status !== 'delivered') {
      undelivered.set(receipt.status, (undelivered.get(receipt.status) ?? 0) + 1);
      const about = { topic: record.topic, id: receipt.messageId };
      problem = new Error(
        receipt.status === 'expired'
          ? t('errors.receipt-expired', about)
          : t('errors.receipt-rejected', { ...about, by: receipt.by ?? '', reason: receipt.error ?? '' }),
      );
    }
    if (live) {
      live.send(msg);
      live.done(problem);
    } else {
      node.send(msg);
      if (problem) node.error(problem, msg);
    }
  });
  publisher.on('refused', (error, record, live) => {
    const refusal = new Error(t('errors.publish-refused', { topic: record.topic, reason: error.message }));
    if (live) live.done(refusal);
    else node.error(refusal, messageOf(record, live));
  });
  publisher.on('dropped', (record, live, reason) => {
    dropped.add();
    changed();
    const key = reason === 'purged' ? 'errors.outbox-purged-message' : 'errors.outbox-dropped-oldest';
    const error = new Error(t(key, { topic: record.topic }));
    if (live) live.done(error);
    // A purge says once how many it dropped (outbox-source.ts), not once per message stored before a restart.
    else if (reason !== 'purged') node.warn(error.message);
  });
}
