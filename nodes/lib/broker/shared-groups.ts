/**
 * MQTT 5 shared subscriptions (section 4.8.2) as the embedded broker keeps them: for each
 * `$share/<group>/<filter>`, the clients that hold it, and which one takes the next message.
 * Nothing here delivers anything: the adapter (aedes/shared-subscriptions.ts) asks `choose`
 * for each message that matches the filter and hands the message to the member it gets.
 */

/** A client holding a shared subscription, as the registry needs to see it. */
export interface ShareMember {
  /** One membership per client id and shared subscription: a client subscribing again replaces its own. */
  readonly clientId: string;
  /** Whether the member can be sent a message now. */
  readonly connected: boolean;
  /** Whether its session outlives its connection, so a message can wait in its queue while it is away. */
  readonly persistent: boolean;
}

/** The member a message goes to, and whether it goes to its queue (no member connected) rather than out. */
export interface ShareChoice<M extends ShareMember> {
  member: M;
  queued: boolean;
}

/**
 * One shared subscription: a group name and a filter [MQTT-4.8.2-1]. Its members take the
 * messages in turn (round robin over those connected), so that each message matching the filter
 * goes to one member only [MQTT-4.8.2-3].
 */
export class SharedSubscription<M extends ShareMember> {
  private readonly members = new Map<string, M>();
  /** The client ids in the order they joined; `next` is where the round resumes. */
  private order: string[] = [];
  private next = 0;

  constructor(
    readonly group: string,
    readonly filter: string,
  ) {}

  get size(): number {
    return this.members.size;
  }

  /** Adds `member`, or replaces the membership of its client id (keeping its turn). */
  join(member: M): void {
    if (!this.members.has(member.clientId)) this.order.push(member.clientId);
    this.members.set(member.clientId, member);
  }

  /** Removes the membership of `clientId`, when it is `member` (a newer one of the same client id stays). */
  leave(clientId: string, member?: M): boolean {
    const present = this.members.get(clientId);
    if (!present || (member && present !== member)) return false;
    this.members.delete(clientId);
    const index = this.order.indexOf(clientId);
    this.order.splice(index, 1);
    if (index < this.next) this.next--;
    if (this.next >= this.order.length) this.next = 0;
    return true;
  }

  get(clientId: string): M | undefined {
    return this.members.get(clientId);
  }

  all(): M[] {
    return this.order.map((clientId) => this.members.get(clientId) as M);
  }

  /**
   * The member the next message goes to: the next connected one `accepts` in the round; when none
   * is connected, the next one with a persistent session, to queue it for; undefined when there is
   * neither, and the message does not reach this group.
   */
  choose(accepts: (member: M) => boolean = () => true): ShareChoice<M> | undefined {
    return (
      this.take((member) => member.connected && accepts(member), false) ??
      this.take((member) => member.persistent && accepts(member), true)
    );
  }

  private take(eligible: (member: M) => boolean, queued: boolean): ShareChoice<M> | undefined {
    const count = this.order.length;
    for (let i = 0; i < count; i++) {
      const index = (this.next + i) % count;
      const member = this.members.get(this.order[index]) as M;
      if (!eligible(member)) continue;
      this.next = (index + 1) % count;
      return { member, queued };
    }
    return undefined;
  }
}

/** Every shared subscription of a broker, by group and filter. */
export class SharedGroups<M extends ShareMember> {
  private readonly subscriptions = new Map<string, SharedSubscription<M>>();

  /** Adds `member` to `$share/group/filter`; `created` says the shared subscription is new (nobody held it). */
  join(group: string, filter: string, member: M): { subscription: SharedSubscription<M>; created: boolean } {
    const key = keyOf(group, filter);
    let subscription = this.subscriptions.get(key);
    const created = subscription === undefined;
    if (!subscription) this.subscriptions.set(key, (subscription = new SharedSubscription(group, filter)));
    subscription.join(member);
    return { subscription, created };
  }

  /**
   * Removes `clientId` (when it is `member`, if given) from `$share/group/filter`; the shared subscription
   * is returned when that left it without members, and it is then forgotten.
   */
  leave(group: string, filter: string, clientId: string, member?: M): SharedSubscription<M> | undefined {
    const key = keyOf(group, filter);
    const subscription = this.subscriptions.get(key);
    if (!subscription?.leave(clientId, member) || subscription.size > 0) return undefined;
    this.subscriptions.delete(key);
    return subscription;
  }

  get(group: string, filter: string): SharedSubscription<M> | undefined {
    return this.subscriptions.get(keyOf(group, filter));
  }

  /** Every shared subscription, for a sweep over the memberships of one client. */
  all(): SharedSubscription<M>[] {
    return [...this.subscriptions.values()];
  }
}

/** A group name has no `/` [MQTT-4.8.2-2]: the first `/` ends it. */
function keyOf(group: string, filter: string): string {
  return `${group}/${filter}`;
}
