/**
 * The out dialog's end-to-end settings (persistence `acknowledged`, until the subscribers): their
 * checks, which take the runtime's rules (lib/receipt-expectation.ts, lib/topic.ts, and how
 * node-red/receipt-settings.ts reads numbers), and the message id options they imply.
 */
import { parseExpectation } from '../lib/receipt-expectation.js';
import { type Translate, publishTopicVerdict, settingText, showWhile } from './common.js';

/** What an acknowledged message waits for before it leaves the outbox. */
export const UNTIL = ['broker', 'subscriber'] as const;
/** The runtime's receipt timeout, in seconds, when a flow sets none. */
export const DEFAULT_RECEIPT_TIMEOUT = 30;

/** Expect: empty (one receipt), a number of receipts, or subscriber names separated by commas. */
export function expectVerdict(t: Translate, value: unknown): true | string {
  return parseExpectation(settingText(value)) !== undefined || t('validation.expect');
}

/**
 * A number of seconds: empty for the default, else a number above `low` (or from `low`, when
 * `lowAllowed`). The runtime reads text that is no number as the default; the dialog refuses it.
 */
function secondsAbove(value: unknown, low: number, lowAllowed: boolean): boolean {
  const text = settingText(value);
  if (text === '') return true;
  const seconds = Number(text);
  return Number.isFinite(seconds) && (lowAllowed ? seconds >= low : seconds > low);
}

export function receiptTimeoutVerdict(t: Translate, value: unknown): true | string {
  return secondsAbove(value, 0, false) || t('validation.receipt-timeout');
}

/** Give up after: 0 or empty for never. */
export function giveUpAfterVerdict(t: Translate, value: unknown): true | string {
  return secondsAbove(value, 0, true) || t('validation.give-up-after');
}

/** Receipt topic: empty for the node's own (defaultReceiptTopic), else a topic to publish to. */
export function receiptTopicVerdict(t: Translate, value: unknown): true | string {
  const topic = settingText(value);
  return !topic || publishTopicVerdict(t, topic, 'validation.receipt-topic');
}

/**
 * Shows the end-to-end rows while the dialog asks for the subscribers' receipts, and shows the
 * message id options as the runtime applies them then: on, whatever their boxes said (every message
 * needs an id for its receipts; on MQTT 3.1.1 the envelope carries it and its reply address). The
 * boxes get back what the user had chosen when the node waits for the broker again, and before
 * Node-RED saves them (`restoreChosen`), so that choice is kept for when it applies again.
 */
export function showReceiptRows(): { restoreChosen(): void } {
  const persistence = $('#node-input-persistence');
  const until = $('#node-input-until');
  const both = persistence.add(until);
  const untilSubscriber = () => persistence.val() === 'acknowledged' && until.val() === 'subscriber';
  showWhile('.durable-mqtt-until', persistence, () => persistence.val() === 'acknowledged');
  showWhile('.durable-mqtt-receipts', both, untilSubscriber);

  const boxes = $('#node-input-messageId, #node-input-messageIdEnvelope');
  const chosen = new Map<HTMLElement, boolean>(boxes.toArray().map((box) => [box, $(box).prop('checked')]));
  let implied = false;
  const imply = () => {
    if (untilSubscriber() === implied) return;
    implied = untilSubscriber();
    boxes.each((_, box) => {
      if (implied) chosen.set(box, $(box).prop('checked'));
      $(box)
        .prop('checked', implied || chosen.get(box))
        .prop('disabled', implied)
        .trigger('change');
    });
    $('.durable-mqtt-message-id-implied').toggle(implied);
  };
  both.on('change', imply);
  $('.durable-mqtt-message-id-implied').hide();
  imply();
  return {
    restoreChosen() {
      if (implied) boxes.each((_, box) => void $(box).prop('checked', chosen.get(box)));
    },
  };
}
