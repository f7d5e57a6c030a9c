import type { IPublishPacket } from 'mqtt';
import { DeliveryCounts, type DeliveryVerdict } from '../lib/quarantine/delivery-counts.js';
import { SuspectGate } from '../lib/quarantine/suspect-gate.js';
import { LevelDeliveryStore } from '../lib/quarantine/level-delivery-store.js';
import { messageKey } from '../lib/quarantine/message-key.js';
import { KeptMessages, LevelKeptMessageStore, type KeptMessage } from '../lib/quarantine/kept-messages.js';
import type { QuarantinedMessageView } from '../lib/monitor-protocol.js';
import type { Translate } from './i18n.js';
import { reportQuarantine as register } from './monitor/registry.js';

export const DEFAULT_MAX_DELIVERIES = 5;

/** What `admit` says of one delivery: pass it to the flow (and tell `finished`), or not. */
export type Admission =
  | { pass: true; key: string | undefined }
  | { pass: false; verdict: Exclude<DeliveryVerdict, { kind: 'deliver' }> };

/**
 * The quarantine of an in node with `ack: complete`: each delivery is counted on disk before the
 * flow gets it, so a message that makes the flow fail, or the process die, is held back after
 * `maxDeliveries` attempts instead of coming back for ever (lib/quarantine/delivery-counts.ts).
 * When its store cannot be opened or written, messages pass uncounted: the node says so, and
 * nothing is held back that the flow could have had.
 */
export class InNodeQuarantine {
  /** Messages quarantined since the node started, for its status. */
  quarantinedCount = 0;
  private counts: DeliveryCounts | undefined;
  /** The quarantined messages themselves, for a release; without them, entries are still listed. */
  private kept: KeptMessages | undefined;
  private readonly opening: Promise<void>;
  private readonly flow = new SuspectGate();

  constructor(directory: string, maxDeliveries: number, onUnavailable: (error: Error) => void) {
    this.opening = DeliveryCounts.open(new LevelDeliveryStore(directory), { maxDeliveries }).then(
      async (counts) => {
        this.counts = counts;
        const quarantined = new Set(counts.quarantined().map(({ key }) => key));
        this.kept = await KeptMessages.open(new LevelKeptMessageStore(`${directory}-messages`), quarantined);
      },
      onUnavailable,
    );
  }

  /** Counts the delivery; rejects only when the count could not be written (the message then passes uncounted). */
  async admit(packet: IPublishPacket, messageId: string | undefined, payload: Buffer): Promise<Admission> {
    if (!this.counts) await this.opening;
    const counts = this.counts;
    if (!counts) return { pass: true, key: undefined };
    const { key, fresh } = messageKey({
      messageId,
      topic: packet.topic,
      payload,
      dup: packet.dup,
      retain: packet.retain,
    });
    // Asked at the gate, once earlier copies of the message have left the flow: their outcome counts.
    await this.flow.enter(key, () => counts.unfinished(key, fresh));
    let verdict: DeliveryVerdict;
    try {
      verdict = await counts.begin(key, Date.now(), { fresh });
    } catch (error) {
      this.flow.leave(key);
      throw error;
    }
    if (verdict.kind === 'deliver') return { pass: true, key };
    this.flow.leave(key);
    if (verdict.kind === 'quarantine') {
      this.quarantinedCount++;
      // Not awaited: the message is quarantined either way; only its later release needs this.
      this.kept?.keep(key, keptMessage(packet)).catch(() => undefined);
    }
    return { pass: false, verdict };
  }

  /** The quarantined messages, newest first, at most `limit`. */
  list(limit: number): QuarantinedMessageView[] {
    const entries = this.counts?.quarantined() ?? [];
    return entries
      .slice(-limit)
      .reverse()
      .map(({ key, attempts, firstSeen, quarantinedAt, lastError }) => ({
        key,
        topic: this.kept?.get(key)?.topic,
        releasable: this.kept?.has(key) ?? false,
        attempts,
        firstSeen,
        quarantinedAt,
        lastError,
      }));
  }

  /** How many messages are quarantined now. */
  get count(): number {
    return this.counts?.quarantinedSize ?? 0;
  }

  /**
   * Takes `key` out of the quarantine and gives back its message, for the node to deliver again as
   * a first delivery; undefined when it was not kept (too large for the bound, or evicted).
   */
  async release(key: string): Promise<KeptMessage | undefined> {
    const message = this.kept?.get(key);
    if (!message || !this.counts) return undefined;
    await this.counts.forget(key);
    await this.kept?.forget(key);
    return message;
  }

  /** Forgets `key` and its message; says whether it was quarantined. */
  async discard(key: string): Promise<boolean> {
    if (!this.counts) return false;
    const wasQuarantined = await this.counts.forget(key);
    await this.kept?.forget(key);
    return wasQuarantined;
  }

  /**
   * The flow finished with a delivery `admit` passed: a success forgets its count, a failure (the
   * flow's error, or that it did not finish in time) keeps it. Resolves when the message may be
   * acknowledged: once a forgotten count is written, so that a crash after the acknowledgment (the
   * broker then never sends the message again) cannot leave it counted for its next copy.
   */
  finished(key: string | undefined, failure: string | undefined): Promise<void> {
    if (key === undefined || !this.counts) return Promise.resolve();
    this.flow.leave(key);
    if (failure === undefined) return this.counts.completed(key);
    this.counts.failed(key, failure);
    return Promise.resolve();
  }

  /** Closes the store; a deleted node's counts and quarantine go with it. */
  async close(removed: boolean): Promise<void> {
    await this.opening;
    if (removed) await Promise.all([this.counts?.destroy(), this.kept?.destroy()]);
    else await Promise.all([this.counts?.close(), this.kept?.close()]);
  }
}

function keptMessage(packet: IPublishPacket): KeptMessage {
  const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
  const message: KeptMessage = { topic: packet.topic, payload, qos: packet.qos, retain: packet.retain };
  if (packet.properties) message.properties = { ...packet.properties };
  return message;
}

/**
 * Shows the in node's quarantine in the editor's sidebar until the returned function is called;
 * a release or a discard there is said in the node's log, with who did it.
 */
export function reportQuarantine(
  node: { id: string; name?: string; warn(text: string): void },
  quarantine: InNodeQuarantine,
  t: Translate,
  deliverAgain: (message: KeptMessage) => unknown,
): () => void {
  const who = (user: string) => user || t('errors.anonymous-user');
  return register({
    id: node.id,
    name: node.name || '',
    count: () => quarantine.count,
    list: (limit) => quarantine.list(limit),
    async release(key, user) {
      const message = await quarantine.release(key);
      if (!message) return false;
      node.warn(t('errors.quarantine-released', { topic: message.topic, user: who(user) }));
      deliverAgain(message);
      return true;
    },
    async discard(key, user) {
      if (!(await quarantine.discard(key))) return false;
      node.warn(t('errors.quarantine-discarded', { key, user: who(user) }));
      return true;
    },
  });
}
