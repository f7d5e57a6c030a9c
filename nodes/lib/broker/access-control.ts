/**
 * Who may connect to the embedded broker and what each may publish and
 * subscribe to: users with hashed passwords and topic patterns, and anonymous
 * clients only when allowed.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { TopicAccess, type Identity } from './acl.js';
import { verifyPassword } from './passwords.js';

export interface TopicRules {
  /** Topic patterns the account may publish to (`+`, `#`, `%u`, `%c`). */
  publish: string[];
  /** Topic patterns the account may subscribe within. */
  subscribe: string[];
}

export interface BrokerUser extends TopicRules {
  username: string;
  /** From hashPassword; a user without one cannot log in. */
  passwordHash: string | undefined;
}

export interface AccessConfig {
  users: BrokerUser[];
  /** The rules for clients without a user name, or undefined when they are refused. */
  anonymous: TopicRules | undefined;
  /**
   * Whether anonymous clients may connect from other machines too; otherwise only from this one
   * (a loopback address), as Mosquitto 2 is by default. Unset: not.
   */
  anonymousFromNetwork?: boolean;
}

/** CONNACK return codes of MQTT 3.1.1: 4 bad user name or password, 5 not authorised. */
export type AuthenticationResult = { accepted: true } | { accepted: false; returnCode: 4 | 5 };

interface Account {
  passwordHash: string | undefined;
  publish: TopicAccess;
  subscribe: TopicAccess;
}

/** scrypt is meant to be slow: a flood of logins must not take every libuv thread from Node-RED. */
const CONCURRENT_VERIFICATIONS = 2;

export class AccessControl {
  private readonly accounts = new Map<string, Account>();
  private readonly anonymous: Account | undefined;
  /** A keyed digest of each user's last accepted password: a reconnect does not pay scrypt again. */
  private readonly accepted = new Map<string, Buffer>();
  private readonly digestKey = randomBytes(32);
  private running = 0;
  private readonly deliveriesChecked: boolean;
  private readonly anonymousFromNetwork: boolean;
  private readonly waiting: (() => void)[] = [];

  constructor(config: AccessConfig) {
    for (const user of config.users) {
      this.accounts.set(user.username, {
        passwordHash: user.passwordHash,
        publish: new TopicAccess(user.publish),
        subscribe: new TopicAccess(user.subscribe),
      });
    }
    this.anonymous = config.anonymous && {
      passwordHash: undefined,
      publish: new TopicAccess(config.anonymous.publish),
      subscribe: new TopicAccess(config.anonymous.subscribe),
    };
    this.anonymousFromNetwork = config.anonymousFromNetwork ?? false;
    const accounts = [...this.accounts.values(), ...(this.anonymous ? [this.anonymous] : [])];
    this.deliveriesChecked = accounts.some((account) => account.subscribe.denies);
  }

  /**
   * Whether a client from another machine giving `username` (none, or any on a broker without
   * users) would come in as anonymous, which only `anonymousFromNetwork` allows.
   */
  refusesFromNetwork(username: string | undefined): boolean {
    return (
      this.anonymous !== undefined && !this.anonymousFromNetwork && (username === undefined || this.open)
    );
  }

  /** Whether anyone may connect, whatever credentials they give. */
  get open(): boolean {
    return this.accounts.size === 0 && this.anonymous !== undefined;
  }

  async authenticate(
    username: string | undefined,
    password: Buffer | undefined,
  ): Promise<AuthenticationResult> {
    if (this.open) return { accepted: true };
    if (username === undefined)
      return this.anonymous ? { accepted: true } : { accepted: false, returnCode: 5 };
    const account = this.accounts.get(username);
    if (!account?.passwordHash || !password) return { accepted: false, returnCode: 4 };
    const digest = createHmac('sha256', this.digestKey).update(password).digest();
    const known = this.accepted.get(username);
    if (known && timingSafeEqual(known, digest)) return { accepted: true };
    const hash = account.passwordHash;
    if (!(await this.limited(() => verifyPassword(password, hash))))
      return { accepted: false, returnCode: 4 };
    this.accepted.set(username, digest);
    return { accepted: true };
  }

  mayPublish(identity: Identity, topic: string): boolean {
    return this.accountOf(identity)?.publish.allowsTopic(topic, identity) ?? false;
  }

  maySubscribe(identity: Identity, filter: string): boolean {
    return this.accountOf(identity)?.subscribe.allowsFilter(filter, identity) ?? false;
  }

  /**
   * Whether a message on `topic` may reach this identity through a subscription it was allowed:
   * false when a denial covers the topic (see TopicAccess.allowsFilter).
   */
  mayReceive(identity: Identity, topic: string): boolean {
    return this.accountOf(identity)?.subscribe.allowsTopic(topic, identity) ?? false;
  }

  /** Whether some account's subscribe list denies: only then is each delivery checked (mayReceive). */
  get checksDeliveries(): boolean {
    return this.deliveriesChecked;
  }

  /** Whether every publication of this identity is allowed, so none needs a check. */
  publishesFreely(identity: Identity): boolean {
    return this.accountOf(identity)?.publish.unrestricted ?? false;
  }

  /** An authenticated identity's account; with an open broker, unknown user names count as anonymous. */
  private accountOf(identity: Identity): Account | undefined {
    if (identity.username === undefined) return this.anonymous;
    return this.accounts.get(identity.username) ?? (this.open ? this.anonymous : undefined);
  }

  private async limited<T>(task: () => Promise<T>): Promise<T> {
    // A finishing task hands its slot straight to the next waiting one.
    if (this.running < CONCURRENT_VERIFICATIONS) this.running++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}
