import { TopicTree } from '../topic-tree.js';
import { filtersOverlap, parseSharedFilter } from '../topic.js';
import {
  DEFAULT_SUBSCRIPTION_OPTIONS,
  type IPublishPacket,
  type QoS,
  type SubscriptionOptions,
  type Subscriber,
} from './types.js';

/** A filter as the broker is asked for it. */
export interface FilterSubscription {
  /** QoS asked of the broker: the highest any subscriber wants. */
  readonly qos: QoS;
  /** QoS the broker holds for this filter in the current session, undefined when not (yet) subscribed. */
  readonly brokerQos: QoS | undefined;
  /** MQTT 5 Subscription Identifier: tells which subscription a delivered copy is for. */
  readonly subscriptionId: number;
  /** MQTT 5 subscription options asked of the broker (see `add` for several subscribers' options). */
  readonly options: SubscriptionOptions;
}

/** One subscription as a subscriber asked for it. */
export interface HeldSubscription extends SubscriptionOptions {
  topic: string;
  qos: QoS;
}

/** What `add` reports when the filter is held with other options than the ones asked. */
export interface OptionsConflict {
  asked: SubscriptionOptions;
  inForce: SubscriptionOptions;
}

const sameOptions = (a: SubscriptionOptions, b: SubscriptionOptions | undefined) =>
  b !== undefined && a.nl === b.nl && a.rap === b.rap && a.rh === b.rh;

/**
 * The options of one subscription serving several subscribers, each getting at least what it would
 * alone: No Local only when all ask it (it withholds messages), Retain As Published when one asks it,
 * and the Retain Handling that sends the most retained messages.
 */
function mergeOptions(a: SubscriptionOptions, b: SubscriptionOptions): SubscriptionOptions {
  return { nl: a.nl && b.nl, rap: a.rap || b.rap, rh: Math.min(a.rh, b.rh) as 0 | 1 | 2 };
}

interface SubscriberEntry {
  subscriber: Subscriber;
  /** Dispatch number of the last message that matched it: one copy per message even when its filters overlap. */
  lastDispatch: number;
  /** Lowest subscription identifier among its filters matching the message being dispatched (MQTT 5). */
  primaryId: number;
  /** Filters this subscriber holds, with the QoS and options it asked for. */
  filters: Map<string, { qos: QoS; options: SubscriptionOptions }>;
}

interface FilterEntry extends FilterSubscription {
  qos: QoS;
  brokerQos: QoS | undefined;
  options: SubscriptionOptions;
  /** Options the broker holds for this filter, undefined when not (yet) subscribed. */
  brokerOptions: SubscriptionOptions | undefined;
  subscribers: Map<SubscriberEntry, Binding>;
}

/** One subscriber holding one filter: what the topic tree stores. */
interface Binding {
  entry: SubscriberEntry;
  filter: FilterEntry;
  /** Whether a persistent session should keep this subscription when the connection closes. */
  durable: boolean;
}

/** What a topic matches: each subscriber once, and the highest QoS the broker granted its filters. */
interface TopicMatch {
  granted: QoS;
  entries: SubscriberEntry[];
}

/** Topics whose matches are kept; past this many, they are matched afresh. */
const TOPIC_MATCH_CACHE_SIZE = 10_000;

/** Largest MQTT 5 Subscription Identifier (a variable byte integer). */
const MAX_SUBSCRIPTION_ID = 268_435_455;

/**
 * The subscriptions of one connection: each filter once, at the highest QoS its subscribers
 * ask, and each incoming message handed to every subscriber it matches, once, through a topic
 * tree. It knows no client library: the connection asks the broker for what it says.
 */
export class SubscriptionTable {
  private dispatchCount = 0;
  private lastSubscriptionId = 0;
  private readonly tree = new TopicTree<Binding>();
  private readonly filters = new Map<string, FilterEntry>();
  private readonly subscribers = new Map<Subscriber, SubscriberEntry>();
  /**
   * The subscribers a topic goes to, and the QoS granted to it, kept until the subscriptions
   * change: most flows publish to a few topics, and a lookup costs less than a walk of the tree
   * (over TCP, a walk per message was 3 % of the time at QoS 0 through Mosquitto).
   */
  private readonly topicMatches = new Map<string, TopicMatch>();

  has(filter: string): boolean {
    return this.filters.has(filter);
  }

  /** A filter already held that overlaps `filter`, one of the two shared; MQTT 5 tells them apart. */
  sharedOverlap(filter: string): string | undefined {
    for (const other of this.filters.keys()) if (overlapOneShared(filter, other)) return other;
    return undefined;
  }

  /**
   * `subscriber` holds `filter` at `qos`; the filter's QoS goes up to it. `durable` subscriptions
   * stay at the broker when a persistent session's connection closes (see nonDurableAtBroker).
   * A session has one subscription per filter [MQTT-3.8.4-3], so subscribers of one filter share
   * its options, merged so that each gets at least its messages (mergeOptions); when they are not
   * the ones a subscriber asked for, the conflict is returned, for the caller to say so.
   */
  add(
    filter: string,
    qos: QoS,
    subscriber: Subscriber,
    durable: boolean,
    options: SubscriptionOptions = DEFAULT_SUBSCRIPTION_OPTIONS,
  ): OptionsConflict | undefined {
    let entry = this.subscribers.get(subscriber);
    if (!entry) {
      entry = { subscriber, lastDispatch: 0, primaryId: 0, filters: new Map() };
      this.subscribers.set(subscriber, entry);
    }
    entry.filters.set(filter, { qos, options });
    let filterEntry = this.filters.get(filter);
    if (!filterEntry) {
      this.lastSubscriptionId = (this.lastSubscriptionId % MAX_SUBSCRIPTION_ID) + 1;
      filterEntry = {
        qos,
        brokerQos: undefined,
        options,
        brokerOptions: undefined,
        subscriptionId: this.lastSubscriptionId,
        subscribers: new Map(),
      };
      this.filters.set(filter, filterEntry);
    }
    // Held by this subscriber alone, the filter takes the options as asked.
    const others = [...filterEntry.subscribers.keys()].filter((other) => other !== entry);
    let conflict: OptionsConflict | undefined;
    if (others.length === 0) {
      filterEntry.options = options;
    } else {
      const merged = others.reduce(
        (sum, other) => mergeOptions(sum, other.filters.get(filter)?.options ?? sum),
        options,
      );
      filterEntry.options = merged;
      // The newcomer or one already there may be the one not getting what it asked.
      const asked = [options, ...others.map((other) => other.filters.get(filter)?.options ?? merged)];
      const unmet = asked.find((wanted) => !sameOptions(wanted, merged));
      if (unmet) conflict = { asked: unmet, inForce: merged };
    }
    const existing = filterEntry.subscribers.get(entry);
    if (existing) {
      existing.durable ||= durable;
    } else {
      const binding: Binding = { entry, filter: filterEntry, durable };
      filterEntry.subscribers.set(entry, binding);
      this.tree.add(filter, binding);
    }
    filterEntry.qos = Math.max(filterEntry.qos, qos) as QoS;
    this.subscriptionsChanged();
    return conflict;
  }

  /**
   * `subscriber` lets go of `filter`. When it was the last one, the filter is returned and stays
   * in the table with no subscriber: the caller hands it to another (a parked subscription) or
   * deletes it.
   */
  remove(filter: string, subscriber: Subscriber): FilterSubscription | undefined {
    const entry = this.subscribers.get(subscriber);
    const filterEntry = this.filters.get(filter);
    const binding = entry && filterEntry?.subscribers.get(entry);
    if (!entry || !filterEntry || !binding) return undefined;
    entry.filters.delete(filter);
    if (entry.filters.size === 0) this.subscribers.delete(subscriber);
    this.tree.remove(filter, binding);
    filterEntry.subscribers.delete(entry);
    this.subscriptionsChanged();
    return filterEntry.subscribers.size === 0 ? filterEntry : undefined;
  }

  /** Forgets a filter that `remove` left without subscribers. */
  deleteFilter(filter: string): void {
    if (this.filters.get(filter)?.subscribers.size === 0) this.filters.delete(filter);
  }

  /** Filters `subscriber` holds. */
  filtersOf(subscriber: Subscriber): string[] {
    const entry = this.subscribers.get(subscriber);
    return entry ? [...entry.filters.keys()] : [];
  }

  /** The subscriptions of `subscriber`, with the QoS and options it asked for. */
  subscriptionsOf(subscriber: Subscriber): HeldSubscription[] {
    const entry = this.subscribers.get(subscriber);
    return entry ? [...entry.filters].map(([topic, { qos, options }]) => ({ topic, qos, ...options })) : [];
  }

  /** Every filter held, with the QoS asked of the broker and its subscribers. */
  holders(): { filter: string; qos: QoS; subscribers: Subscriber[] }[] {
    return [...this.filters].map(([filter, entry]) => ({
      filter,
      qos: entry.qos,
      subscribers: [...entry.subscribers.keys()].map((subscriber) => subscriber.subscriber),
    }));
  }

  /** Each pair of held filters that overlap, one of the two shared (see sharedOverlap). */
  sharedOverlaps(): [filter: string, other: string][] {
    const filters = [...this.filters.keys()];
    return filters.flatMap((filter, i) =>
      filters
        .slice(i + 1)
        .filter((other) => overlapOneShared(filter, other))
        .map((other): [string, string] => [other, filter]),
    );
  }

  /** Every filter held. */
  allFilters(): string[] {
    return [...this.filters.keys()];
  }

  /** Filters subscribed at the broker in this session, with their QoS. */
  brokerSubscriptions(): Map<string, QoS> {
    const result = new Map<string, QoS>();
    for (const [filter, entry] of this.filters)
      if (entry.brokerQos !== undefined) result.set(filter, entry.brokerQos);
    return result;
  }

  /**
   * The subscription to ask the broker for, when it does not hold `filter` at the QoS and options
   * wanted; from now on it counts as held so, until `refused` or `brokerSessionLost` says otherwise.
   */
  requestAtBroker(filter: string): FilterSubscription | undefined {
    const entry = this.filters.get(filter);
    if (!entry || (entry.brokerQos === entry.qos && sameOptions(entry.options, entry.brokerOptions)))
      return undefined;
    entry.brokerQos = entry.qos;
    entry.brokerOptions = entry.options;
    this.subscriptionsChanged();
    return entry;
  }

  /** The broker refused `filter`: it is not held there; returns the subscribers to tell. */
  refused(filter: string): Subscriber[] {
    const entry = this.filters.get(filter);
    if (!entry) return [];
    entry.brokerQos = undefined;
    entry.brokerOptions = undefined;
    this.subscriptionsChanged();
    return [...entry.subscribers.keys()].map(({ subscriber }) => subscriber);
  }

  /** A new session at the broker holds none of the filters. */
  brokerSessionLost(): void {
    for (const entry of this.filters.values()) {
      entry.brokerQos = undefined;
      entry.brokerOptions = undefined;
    }
    this.subscriptionsChanged();
  }

  /** Filters held at the broker that no subscriber asked to keep there (see `add`'s `durable`). */
  nonDurableAtBroker(): string[] {
    const filters: string[] = [];
    for (const [filter, entry] of this.filters) {
      const durable = [...entry.subscribers.values()].some((binding) => binding.durable);
      if (!durable && entry.brokerQos !== undefined) filters.push(filter);
    }
    return filters;
  }

  /** Whether a subscriber that holds acknowledgments matches `topic`. */
  matchesHolder(topic: string): boolean {
    return this.matchOf(topic).entries.some((entry) => entry.subscriber.holdsAcknowledgments);
  }

  /**
   * Hands a PUBLISH to each subscriber it is for, once; returns what the subscribers hold its
   * acknowledgment with (QoS 1/2 only), or undefined when none does.
   */
  dispatch(topic: string, payload: Buffer, packet: IPublishPacket): Promise<void>[] | undefined {
    const dispatch = ++this.dispatchCount;
    const ids = packet.properties?.subscriptionIdentifier;
    const holdable = packet.qos !== 0;
    let holds: Promise<void>[] | undefined;
    if (ids === undefined) {
      // One copy per PUBLISH for each subscriber, however many of its filters match.
      for (const entry of this.matchOf(topic).entries) {
        const hold = entry.subscriber.onMessage(topic, payload, packet);
        if (hold && holdable) (holds ??= []).push(hold);
      }
      return holds;
    }
    // MQTT 5 brokers may send one copy per matching subscription, each naming its
    // subscription: a subscriber takes only the copy naming its lowest matching one.
    const matched: SubscriberEntry[] = [];
    this.tree.match(topic, ({ entry, filter }) => {
      if (entry.lastDispatch !== dispatch) {
        entry.lastDispatch = dispatch;
        entry.primaryId = filter.subscriptionId;
        matched.push(entry);
      } else if (filter.subscriptionId < entry.primaryId) {
        entry.primaryId = filter.subscriptionId;
      }
    });
    const carried = Array.isArray(ids) ? ids : [ids];
    for (const entry of matched) {
      if (!carried.includes(entry.primaryId)) continue;
      const hold = entry.subscriber.onMessage(topic, payload, packet);
      if (hold && holdable) (holds ??= []).push(hold);
    }
    return holds;
  }

  /**
   * A message from a core session: each subscriber once, at the highest QoS among the filters
   * that match (the broker's grant to a network client). There is no acknowledgment to hold:
   * the broker keeps nothing for a clean session.
   */
  dispatchFromCoreSession(topic: string, payload: Buffer, publishedQos: QoS, retain: boolean): void {
    const match = this.matchOf(topic);
    const qos = publishedQos < match.granted ? publishedQos : match.granted;
    const packet = { cmd: 'publish', topic, payload, qos, retain, dup: false } as IPublishPacket;
    for (const entry of match.entries) void entry.subscriber.onMessage(topic, payload, packet);
  }

  private matchOf(topic: string): TopicMatch {
    const known = this.topicMatches.get(topic);
    if (known) return known;
    const match: TopicMatch = { granted: 0, entries: [] };
    const dispatch = ++this.dispatchCount;
    this.tree.match(topic, ({ entry, filter }) => {
      if (filter.brokerQos !== undefined && filter.brokerQos > match.granted)
        match.granted = filter.brokerQos;
      if (entry.lastDispatch === dispatch) return;
      entry.lastDispatch = dispatch;
      match.entries.push(entry);
    });
    if (this.topicMatches.size >= TOPIC_MATCH_CACHE_SIZE) this.topicMatches.clear();
    this.topicMatches.set(topic, match);
    return match;
  }

  /** Filters, subscribers or granted QoS changed: what was matched may be wrong now. */
  private subscriptionsChanged() {
    this.topicMatches.clear();
  }
}

/** Whether `a` and `b` overlap with one of them shared: a copy for one is then not told from the other's without identifiers. */
function overlapOneShared(a: string, b: string): boolean {
  const shared = (filter: string) => parseSharedFilter(filter)?.group !== undefined;
  return (shared(a) || shared(b)) && filtersOverlap(a, b);
}
