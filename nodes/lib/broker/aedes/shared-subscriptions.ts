/**
 * Shared subscriptions (`$share/<group>/<filter>`, MQTT 5 section 4.8.2) for the embedded broker.
 * Aedes 2.0.0-beta.1 has none: it answers an MQTT 5 `$share/…` with SUBACK 0x9E and takes an MQTT
 * 3.1.1 one as a plain filter. Here, as Mosquitto does for both versions:
 *
 * - Each `$share/g/f` of a SUBSCRIBE or UNSUBSCRIBE is renamed, as the client's packet is parsed, to
 *   a form Aedes does not know as shared (internalFilter). Aedes then runs its whole SUBSCRIBE:
 *   topic rules, the SUBACK, the persistent session's stored subscriptions (restored under the same
 *   name); no retained message matches that form, so none is sent on a shared subscription.
 * - Aedes hands the subscription to the broker's `subscribe` with the client's own deliver function:
 *   the broker's `subscribe` and `unsubscribe` are replaced so that form joins the member to its
 *   group (../shared-groups.ts) instead of the message bus, and one handler per shared subscription
 *   listens on the bus for `f` and gives each message to one member, through that member's deliver
 *   function: QoS, packet identifiers, the outgoing queue of a persistent session are Aedes' own.
 */
import type { Aedes } from 'aedes' with { 'resolution-mode': 'import' };
import { parseSharedFilter } from '../../topic.js';
import { SharedGroups, type ShareMember, type SharedSubscription } from '../shared-groups.js';
import type { BrokerShares } from '../shared-cluster.js';
import type { BrokerHandler, BrokerMessage } from '../core-session.js';
import type { AedesClient, AedesInternals, DeliveredPacket, DeliverFunction } from './types.js';

/**
 * What Aedes is given for `$share/`: U+0000 may be in no topic name or filter a client sends
 * [MQTT-4.7.3-2] (the packet gate closes on it), so no publication matches this form, no client
 * can subscribe to it, and the retained messages Aedes looks up for it are none.
 */
const INTERNAL_PREFIX = '\u0000share/';
const PUBLIC_PREFIX = '$share/';

/** The name Aedes knows a `$share/g/f` filter by; any other filter unchanged. */
export function internalFilter(filter: string): string {
  return parseSharedFilter(filter)?.group === undefined
    ? filter
    : INTERNAL_PREFIX + filter.slice(PUBLIC_PREFIX.length);
}

/** The filter the client wrote, from the name Aedes knows it by. */
export function publicFilter(filter: string): string {
  return filter.startsWith(INTERNAL_PREFIX) ? PUBLIC_PREFIX + filter.slice(INTERNAL_PREFIX.length) : filter;
}

/** What Aedes keeps of a client's subscription (aedes/lib/handlers/subscribe.js). */
interface AedesSubscription {
  qos: number;
  func: DeliverFunction;
  /** MQTT 5 Subscription Identifier, when the SUBSCRIBE gave one. */
  si?: number;
}

/** A QoS 1 message sent to a clean-session member and not yet acknowledged. */
interface InFlight {
  message: DeliveredPacket & BrokerMessage;
  /** Known once Aedes has written the PUBLISH. */
  messageId?: number;
}

interface Member extends ShareMember {
  /** Hands the member one message, at the QoS given; `done` once it is written, or queued. */
  deliver(message: DeliveredPacket & BrokerMessage, done: () => void): void;
}

/** A network (or in-process MQTT) client, through the deliver function Aedes made for its subscription. */
class ClientMember implements Member {
  readonly inFlight = new Set<InFlight>();

  constructor(
    readonly client: AedesClient,
    private readonly subscription: AedesSubscription,
    private readonly queue: (clientId: string, message: DeliveredPacket) => Promise<void>,
  ) {}

  get clientId(): string {
    return this.client.id;
  }

  get connected(): boolean {
    return this.client.connected && !this.client.closed;
  }

  get persistent(): boolean {
    return !this.client.clean;
  }

  get func(): DeliverFunction {
    return this.subscription.func;
  }

  deliver(message: DeliveredPacket & BrokerMessage, done: () => void): void {
    // The member's QoS caps the message's [MQTT-3.8.4-8]; Aedes lowers it only for a filter equal to the topic.
    const qos = Math.min(message.qos, this.subscription.qos) as BrokerMessage['qos'];
    const identifier = this.subscription.si;
    // Queued with its identifier: among the session's queue, the copy for this share is told from the
    // client's other subscriptions' (nameQueuedSubscriptions in client-patches.ts).
    const packet =
      identifier === undefined
        ? { ...message, qos }
        : { ...message, qos, properties: { ...message.properties, subscriptionIdentifier: identifier } };
    if (!this.connected) {
      // Chosen because nobody is connected: it waits in this persistent session's queue; QoS 0 is not kept.
      if (qos === 0) return done();
      return void this.queue(this.clientId, packet).then(done, done);
    }
    if (qos > 0 && this.persistent) {
      // As Aedes' own delivery: in the queue first, so the message survives the connection [MQTT-4.4.0-1].
      return void this.queue(this.clientId, packet).then(() => this.subscription.func(packet, done), done);
    }
    if (qos !== 1) return this.subscription.func(packet, done);
    const entry: InFlight = { message };
    this.inFlight.add(entry);
    // Aedes calls the write callback as a method of the PUBLISH it wrote (aedes/lib/client.js,
    // writeQoS: `packet.writeCallback()`): that is where the packet identifier it chose is read.
    this.subscription.func(packet, function written(this: { messageId?: number } | undefined) {
      entry.messageId = this?.messageId;
      done();
    });
  }

  acknowledged(messageId: number): void {
    for (const entry of this.inFlight)
      if (entry.messageId === messageId) return void this.inFlight.delete(entry);
  }
}

/** One of this Node-RED's broker configs connected through the broker's core (core-session.ts). */
class CoreMember implements Member {
  readonly connected = true;
  readonly persistent = false;

  constructor(
    readonly clientId: string,
    readonly handler: BrokerHandler,
  ) {}

  deliver(message: BrokerMessage, done: () => void): void {
    this.handler(message, done);
  }
}

/** The Aedes broker methods replaced, and its authorizeForward, typed as this module calls them. */
interface BrokerMethods {
  subscribe(topic: string, func: DeliverFunction, done?: (error?: Error | null) => void): void;
  unsubscribe(topic: string, func: DeliverFunction, done?: (error?: Error | null) => void): void;
  authorizeForward(client: AedesClient, packet: DeliveredPacket): DeliveredPacket | null | undefined;
  on(
    event: 'client' | 'sessionExpired' | 'clientReady' | 'clientDisconnect',
    listener: (client: AedesClient) => void,
  ): unknown;
}

/** How the brokers on one Redis agree on which of them gives a message to a group (shared-announcements.ts). */
export interface SharedClusterLink {
  owns(key: string, local: { connected: boolean; persistent: boolean }, messageKey: string): boolean;
  /** The shared subscriptions held here, or whether a member of one is connected, changed. */
  changed(): void;
}

/** The parts of a parsed packet this module reads or renames. */
interface ParsedPacket {
  cmd: string;
  messageId?: number;
  subscriptions?: { topic: string }[];
  unsubscriptions?: string[];
}

/** The shared subscriptions of one Aedes broker; `applyTo` each client before it reads a packet. */
export class SharedSubscriptions {
  private readonly groups = new SharedGroups<Member>();
  /** The bus handler of each shared subscription, there while it has members. */
  private readonly handlers = new Map<SharedSubscription<Member>, DeliverFunction>();
  /** Clients applied to and not yet closed: where a deliver function handed to `subscribe` is looked up. */
  private readonly clients = new Set<AedesClient>();
  private readonly members = new Map<DeliverFunction | BrokerHandler, Member>();
  /** The memberships of each client whose PUBACKs are looked at. */
  private readonly membershipsOf = new Map<AedesClient, Set<ClientMember>>();
  private readonly busSubscribe: BrokerMethods['subscribe'];
  private readonly busUnsubscribe: BrokerMethods['unsubscribe'];
  private readonly broker: BrokerMethods;

  constructor(
    aedes: Aedes,
    private readonly cluster?: SharedClusterLink,
  ) {
    const broker = aedes as unknown as BrokerMethods;
    this.broker = broker;
    this.busSubscribe = broker.subscribe.bind(broker);
    this.busUnsubscribe = broker.unsubscribe.bind(broker);
    const { persistence } = aedes as unknown as AedesInternals;
    this.queue = (clientId, message) => persistence.outgoingEnqueue({ clientId }, message);
    broker.subscribe = (topic, func, done) => {
      if (!topic.startsWith(INTERNAL_PREFIX)) return this.busSubscribe(topic, func, done);
      this.joinClient(topic, func);
      done?.();
    };
    broker.unsubscribe = (topic, func, done) => {
      if (!topic.startsWith(INTERNAL_PREFIX)) return this.busUnsubscribe(topic, func, done);
      this.leaveClient(topic, func);
      done?.();
    };
    // A client id back with a new session (clean start, or its old one expired) holds none of the old
    // one's shared subscriptions; one resuming its session has them restored before it is registered.
    broker.on('client', (client) => this.forgetOtherSessions(client.id, client));
    broker.on('sessionExpired', (client) => this.forgetOtherSessions(client.id, undefined));
    // A member connecting or leaving changes what the other brokers must be told.
    for (const event of ['clientReady', 'clientDisconnect'] as const)
      broker.on(event, (client) => {
        if (this.membershipsOf.has(client) || this.groups.all().some((s) => s.get(client.id)))
          this.cluster?.changed();
      });
  }

  /** The shared subscriptions this broker has a member of, for the other brokers on the Redis. */
  sharesHeld(): BrokerShares {
    const shares: BrokerShares = { connected: [], persistent: [] };
    for (const subscription of this.groups.all()) {
      const members = subscription.all();
      const key = `${subscription.group}/${subscription.filter}`;
      if (members.some((member) => member.connected)) shares.connected.push(key);
      else if (members.some((member) => member.persistent)) shares.persistent.push(key);
    }
    return shares;
  }

  private readonly queue: (clientId: string, message: DeliveredPacket) => Promise<void>;

  /** Renames the client's `$share/` filters for Aedes and notes its PUBACKs; call before it reads a packet. */
  applyTo(client: AedesClient): void {
    this.clients.add(client);
    client.conn.once('close', () => this.clients.delete(client));
    // First among the parser's listeners: Aedes reads the packet after this.
    client._parser.prependListener('packet', (packet: ParsedPacket) => {
      if (packet.cmd === 'subscribe')
        for (const subscription of packet.subscriptions ?? [])
          subscription.topic = internalFilter(subscription.topic);
      else if (packet.cmd === 'unsubscribe' && packet.unsubscriptions)
        packet.unsubscriptions = packet.unsubscriptions.map(internalFilter);
      else if (packet.cmd === 'puback' && packet.messageId !== undefined)
        this.acknowledged(client, packet.messageId);
    });
  }

  /** A core session's `$share/g/f` (core-session.ts): false when `filter` is not a shared one. */
  subscribeCore(clientId: string, filter: string, handler: BrokerHandler): boolean {
    const shared = parseSharedFilter(filter);
    if (shared?.group === undefined) return false;
    const member = new CoreMember(clientId, handler);
    this.members.set(handler, member);
    this.join(shared.group, shared.filter, member);
    return true;
  }

  unsubscribeCore(filter: string, handler: BrokerHandler): boolean {
    const shared = parseSharedFilter(filter);
    if (shared?.group === undefined) return false;
    const member = this.members.get(handler);
    this.members.delete(handler);
    if (member) this.leave(shared.group, shared.filter, member);
    return true;
  }

  private joinClient(topic: string, func: DeliverFunction): void {
    const shared = parseSharedFilter(publicFilter(topic));
    if (shared?.group === undefined) return;
    const client = [...this.clients].find(
      (candidate) => (candidate.subscriptions[topic] as AedesSubscription | undefined)?.func === func,
    );
    if (!client) return;
    const member = new ClientMember(client, client.subscriptions[topic] as AedesSubscription, this.queue);
    this.members.set(func, member);
    let memberships = this.membershipsOf.get(client);
    if (!memberships) this.membershipsOf.set(client, (memberships = new Set()));
    memberships.add(member);
    this.join(shared.group, shared.filter, member);
  }

  private leaveClient(topic: string, func: DeliverFunction): void {
    const shared = parseSharedFilter(publicFilter(topic));
    const member = this.members.get(func);
    if (shared?.group === undefined || !(member instanceof ClientMember)) return;
    this.members.delete(func);
    const memberships = this.membershipsOf.get(member.client);
    memberships?.delete(member);
    if (memberships?.size === 0) this.membershipsOf.delete(member.client);
    // A persistent session leaving with its connection keeps its subscription: messages wait in its queue.
    if (member.client.closed && member.persistent) return this.cluster?.changed();
    this.leave(shared.group, shared.filter, member);
    // After an UNSUBSCRIBE the client may still acknowledge what it has: only a closed session's messages move.
    if (member.client.closed) this.reroute(shared.group, shared.filter, member);
  }

  private join(group: string, filter: string, member: Member): void {
    const { subscription, created } = this.groups.join(group, filter, member);
    this.cluster?.changed();
    if (!created) return;
    const handler = this.busHandlerFor(subscription);
    this.handlers.set(subscription, handler);
    this.busSubscribe(filter, handler);
  }

  private leave(group: string, filter: string, member: Member): void {
    const emptied = this.groups.leave(group, filter, member.clientId, member);
    this.cluster?.changed();
    const handler = emptied && this.handlers.get(emptied);
    if (!emptied || !handler) return;
    this.handlers.delete(emptied);
    this.busUnsubscribe(filter, handler);
  }

  /** The bus handler of one shared subscription: each message to one member, or to none. */
  private busHandlerFor(subscription: SharedSubscription<Member>): DeliverFunction {
    // [MQTT-4.7.2-1] A filter starting with a wildcard matches no topic starting with `$`.
    const skipsDollarTopics = /^[+#]/.test(subscription.filter);
    // Each group's copy is a message of its own to a client's dedupe (client-patches.ts), which
    // would otherwise drop it when the client also has a plain subscription, or another group's copy [MQTT-4.8.2-3].
    const copyOf = `/${PUBLIC_PREFIX}${subscription.group}/${subscription.filter}`;
    const key = `${subscription.group}/${subscription.filter}`;
    return (packet, done) => {
      const message = packet as DeliveredPacket & BrokerMessage;
      if (skipsDollarTopics && message.topic.startsWith('$')) return done();
      // On a Redis cluster every broker sees the message: one of those with members delivers it.
      if (this.cluster && !this.ownedHere(subscription, key, `${message.brokerId}:${message.brokerCounter}`))
        return done();
      const copy = { ...message, brokerId: `${message.brokerId ?? ''}${copyOf}`, dup: false };
      this.send(subscription, copy, done);
    };
  }

  private ownedHere(subscription: SharedSubscription<Member>, key: string, messageKey: string): boolean {
    const members = subscription.all();
    const local = {
      connected: members.some((member) => member.connected),
      persistent: members.some((member) => member.persistent),
    };
    return !!this.cluster?.owns(key, local, messageKey);
  }

  private send(
    subscription: SharedSubscription<Member>,
    message: DeliveredPacket & BrokerMessage,
    done: () => void,
  ): void {
    const choice = subscription.choose((member) => this.mayForward(member, message));
    if (!choice) return done();
    choice.member.deliver(message, done);
  }

  /** The topic rules' withholding (access-hooks.ts, authorizeForward), asked before a member is chosen. */
  private mayForward(member: Member, message: DeliveredPacket): boolean {
    return !(member instanceof ClientMember) || !!this.broker.authorizeForward(member.client, message);
  }

  private acknowledged(client: AedesClient, messageId: number): void {
    for (const member of this.membershipsOf.get(client) ?? []) member.acknowledged(messageId);
  }

  /**
   * The QoS 1 messages a clean-session member leaves unacknowledged go to another member of its group
   * (MQTT 5 section 4.8.2, a SHOULD). QoS 2 ones do not: [MQTT-4.8.2-5] forbids it.
   */
  private reroute(group: string, filter: string, member: ClientMember): void {
    const left = [...member.inFlight];
    member.inFlight.clear();
    const subscription = this.groups.get(group, filter);
    if (!subscription) return;
    for (const { message } of left) this.send(subscription, message, () => undefined);
  }

  /** Drops the memberships `clientId` holds through any client but `current`. */
  private forgetOtherSessions(clientId: string, current: AedesClient | undefined): void {
    for (const subscription of this.groups.all()) {
      const member = subscription.get(clientId);
      if (member instanceof ClientMember && member.client !== current)
        this.leave(subscription.group, subscription.filter, member);
    }
  }
}
