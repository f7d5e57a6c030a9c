/**
 * A per-client bound on the outgoing queues of an Aedes persistence.
 *
 * Aedes queues every QoS 1/2 message for a client with a persistent
 * session, without limit: a device that stays away fills the memory (or the
 * disk) of the box. This wraps a persistence (aedes-persistence's memory one
 * or aedes-persistence-level) and, when a client that is not connected has more
 * than `maxMessages` queued, removes its oldest queued messages and reports them.
 * It uses only the persistence contract, so it works the same on every backend.
 */
import { Readable } from 'node:stream';
import { withOverrides } from './persistence-patches.js';
import type { AedesPersistence, ClientRef, DeliveredPacket } from './types.js';

export interface OfflineQueueBoundOptions {
  /** The most messages kept for one client while it is away; 0 keeps them all. */
  maxMessages: number;
  /** Whether the client is connected now: a connected client's queue holds its messages in flight. */
  isConnected(clientId: string): boolean;
  /** Called once per message removed to make room. */
  onDrop(clientId: string, packet: DeliveredPacket): void;
  /** Called when a message is queued for a connected client whose queue is over the bound (nothing is trimmed). */
  onOverWhileConnected?(clientId: string, maxMessages: number): void;
}

/**
 * A packet identifier MQTT never uses [MQTT-2.3.1-1]: the bound gives it to a
 * queued message it is about to remove, so that `outgoingClearMessageId`,
 * the contract's only removal, can find that message.
 */
const REMOVAL_ID = 0;

interface QueueState {
  /** Entries in the client's outgoing queue, once counted. */
  length: number;
  /** Set while the entries already stored (by an earlier run, on disk) are being counted. */
  counting: Promise<void> | undefined;
  /** The removals in progress, so that two never pick the same oldest message. */
  trimming: Promise<void>;
}

class OfflineQueueBound {
  private readonly queues = new Map<string, QueueState>();

  constructor(
    private readonly inner: AedesPersistence,
    private readonly options: OfflineQueueBoundOptions,
  ) {}

  async outgoingEnqueue(sub: { clientId: string }, packet: DeliveredPacket): Promise<void> {
    await this.outgoingEnqueueCombi([sub], packet);
  }

  async outgoingEnqueueCombi(allSubs: { clientId: string }[], packet: DeliveredPacket): Promise<void> {
    const subs = onePerClient(allSubs);
    const states = subs.map((sub) => this.stateOf(sub.clientId));
    // Counting happens once per client and run; the common path awaits nothing here.
    for (const state of states) if (state.counting) await state.counting;
    await this.inner.outgoingEnqueueCombi(subs, packet);
    let trims: Promise<void>[] | undefined;
    for (let i = 0; i < subs.length; i++) {
      const state = states[i];
      state.length++;
      if (state.length <= this.options.maxMessages) continue;
      if (!this.options.isConnected(subs[i].clientId))
        (trims ??= []).push(this.trim(subs[i].clientId, state));
      else this.options.onOverWhileConnected?.(subs[i].clientId, this.options.maxMessages);
    }
    if (trims) await Promise.all(trims);
  }

  async outgoingClearMessageId(
    client: ClientRef,
    packet: { messageId?: number },
  ): Promise<DeliveredPacket | undefined> {
    // Aedes clears with no packet identifier when it skips the second copy of a message for
    // overlapping subscriptions; the memory persistence would then remove whichever queued
    // message has none yet (one being sent, even), the level one nothing. Nothing, on both.
    if (packet.messageId === undefined) return undefined;
    const state = this.queues.get(client.id);
    if (state?.counting) await state.counting;
    const cleared = await this.inner.outgoingClearMessageId(client, packet);
    if (cleared && state) state.length = Math.max(0, state.length - 1);
    return cleared;
  }

  private stateOf(clientId: string): QueueState {
    let state = this.queues.get(clientId);
    if (!state) {
      const created: QueueState = { length: 0, counting: undefined, trimming: Promise.resolve() };
      // Without a bound nothing is ever trimmed: the stored queue need not be read.
      if (Number.isFinite(this.options.maxMessages))
        created.counting = countEntries(this.inner.outgoingStream({ id: clientId }))
          .then(
            (stored) => {
              created.length += stored;
            },
            // Unreadable: the count starts from what is queued from now on, the bound applies later.
            () => undefined,
          )
          .finally(() => {
            created.counting = undefined;
          });
      state = created;
      this.queues.set(clientId, state);
    }
    return state;
  }

  private trim(clientId: string, state: QueueState): Promise<void> {
    // A removal that fails drops nothing and leaves the queue over its bound until the next message
    // for this client tries again; the message just queued stays queued either way.
    state.trimming = state.trimming
      .then(() => this.dropOldestWhileOver(clientId, state))
      .catch(() => undefined);
    return state.trimming;
  }

  private async dropOldestWhileOver(clientId: string, state: QueueState): Promise<void> {
    const client = { id: clientId };
    while (state.length > this.options.maxMessages) {
      const oldest = await firstPublish(this.inner.outgoingStream(client));
      // A client that came back is being sent its queue: removing from it now would break that.
      if (!oldest || this.options.isConnected(clientId)) return;
      // A message sent before the client left has its packet identifier; one queued since has none yet.
      const messageId = oldest.messageId ? oldest.messageId : REMOVAL_ID;
      if (messageId === REMOVAL_ID) await this.inner.outgoingUpdate(client, { ...oldest, messageId });
      const removed = await this.inner.outgoingClearMessageId(client, { messageId });
      if (!removed) return;
      state.length--;
      this.options.onDrop(clientId, removed);
    }
  }
}

/**
 * Overlapping subscriptions of one client match a topic once each; the memory
 * persistence would queue the message once per match (and send it twice after
 * a reconnect), the level one once in all. One entry per client on both keeps the count true.
 */
function onePerClient(subs: { clientId: string }[]): { clientId: string }[] {
  if (subs.length < 2) return subs;
  const seen = new Set<string>();
  return subs.filter((sub) => !seen.has(sub.clientId) && seen.add(sub.clientId));
}

function countEntries(stream: AsyncIterable<unknown>): Promise<number> {
  return Readable.from(stream).reduce((count: number) => count + 1, 0);
}

/** The oldest queued PUBLISH (a PUBREL of a QoS 2 exchange left half-way is not a message to drop). */
async function firstPublish(stream: AsyncIterable<DeliveredPacket>): Promise<DeliveredPacket | undefined> {
  // Leaving the loop early ends the stream (a Readable is destroyed, a generator returns).
  for await (const entry of stream) if (entry.cmd === 'publish') return entry;
  return undefined;
}

/**
 * `persistence` with its outgoing queues bounded per client as `options` says;
 * every other method is the persistence's own. A `maxMessages` of 0 sets no bound; a message is
 * still queued once per client, and a clear without a packet identifier still clears nothing.
 */
export function boundOfflineQueues<P extends AedesPersistence>(
  persistence: P,
  options: OfflineQueueBoundOptions,
): P {
  const maxMessages = options.maxMessages > 0 ? options.maxMessages : Number.POSITIVE_INFINITY;
  const bound = new OfflineQueueBound(persistence, { ...options, maxMessages });
  return withOverrides(persistence, {
    outgoingEnqueue: bound.outgoingEnqueue.bind(bound),
    outgoingEnqueueCombi: bound.outgoingEnqueueCombi.bind(bound),
    outgoingClearMessageId: bound.outgoingClearMessageId.bind(bound),
  });
}
