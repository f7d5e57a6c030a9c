/**
 * What stands between a client's bytes and Aedes: it cuts the stream into
 * packets, refuses the ones the embedded broker does not accept, and drops the
 * publications the client may not make. Aedes only ever parses what passes.
 */
import type { Identity } from './acl.js';
import {
  acknowledgmentViolation,
  connectViolation,
  controlCharacterViolation,
  emptyPacketViolation,
  firstByteViolation,
  protocolLevelViolation,
  publishViolation,
  subscribeViolation,
  unsubscribeViolation,
  type Violation,
} from './conformance.js';
import { MAX_QOS2_AWAITING_RELEASE, TOPIC_ALIAS_MAXIMUM } from './limits.js';
import { reasonStringProperty, topicAliasOf, wantsProblemInformation } from './mqtt5-properties.js';
import {
  FrameSplitter,
  MQTT5,
  NOT_AUTHORIZED,
  PUBLISH_NOT_AUTHORIZED,
  PacketType,
  acknowledgment,
  connectLevel,
  readConnect,
  readPublish,
  readSubscribe,
  readUnsubscribe,
  type Frame,
} from './mqtt-frames.js';

/** The publish rules of the broker's access control. */
export interface PublishAccess {
  mayPublish(identity: Identity, topic: string): boolean;
  publishesFreely(identity: Identity): boolean;
}

export interface GateOptions {
  /** The largest packet accepted, fixed header included. */
  maxPacketSize: number;
  /** Undefined when every client may publish everywhere. */
  access: PublishAccess | undefined;
  /**
   * Whether packets are held to the rules of MQTT 3.1.1 that Aedes leaves
   * unchecked. Off for the broker's own in-process clients, which cannot break them.
   */
  conformance: boolean;
  /** Close on control characters in topics, filters, client ids and user names (see BrokerLimits). */
  refuseControlCharacters?: boolean;
  /**
   * For a client from another machine: whether the user name it gives (or none) would make it
   * an anonymous client, which may connect from this machine only. Undefined for local clients.
   */
  refusesAnonymous?: (username: string | undefined) => boolean;
}

/** Where the gate's decisions go: the connection it guards. */
export interface GateOutput {
  /** Bytes for Aedes. */
  forward(bytes: Buffer): void;
  /** A packet for the client, to be sent once it is connected. */
  answer(bytes: Buffer): void;
  /** A publication the client may not make was dropped (and acknowledged at QoS 1 and 2). */
  publishRefused(identity: Identity, topic: string): void;
  /** The connection must close, after a CONNACK with `connackCode` when set: `reason` says why, for the log. */
  violation(reason: string, connackCode?: number): void;
  /** An anonymous client from another machine: refused with CONNACK 5 (0x87 on MQTT 5). */
  anonymousRefused(): void;
}

type Verdict = 'forward' | 'forward-last' | 'drop' | 'close';

type GateState =
  /** Until the CONNECT. */
  | 'connecting'
  /** Every packet is looked at. */
  | 'checking'
  /** Nothing to check for this client any more: bytes go straight through. */
  | 'passing'
  /** A CONNECT Aedes will refuse: it answers it, nothing after it goes on. */
  | 'discarding'
  | 'closed';

export class PacketGate {
  private state: GateState = 'connecting';
  private readonly splitter: FrameSplitter;
  /** Who the client said it is in its CONNECT. */
  identity: Identity | undefined;
  /** Whether the rules limit where this client may publish: its PUBLISH topics are checked. */
  private restricted = false;
  /** The protocol level of the client's CONNECT (3, 4 or 5), once read; 4 before. */
  private level = 4;
  /** Whether a refusal may carry a Reason String: not if the CONNECT said Request Problem Information 0. */
  private problemInformation = true;
  /** The packet identifiers of the client's QoS 2 publications not released yet (checked clients only). */
  private readonly awaitingRelease = new Set<number>();
  /** MQTT 5: the topic of each Topic Alias the client has set on this connection [MQTT-3.3.2-10]. */
  private readonly topicAliases = new Map<number, Buffer>();

  constructor(
    private readonly options: GateOptions,
    private readonly output: GateOutput,
  ) {
    this.splitter = new FrameSplitter(options.maxPacketSize);
  }

  /** Takes the next bytes from the client. */
  accept(chunk: Buffer): void {
    if (this.state === 'passing') return this.output.forward(chunk);
    if (this.state === 'discarding' || this.state === 'closed') return;
    const split = this.splitter.push(chunk);
    if (split === 'malformed-length') return void this.close('malformed remaining length [MQTT-2.2.3]');
    if (split === 'too-large')
      return void this.close(`packet larger than ${this.options.maxPacketSize} bytes`);
    // Packets that go on are forwarded as few slices as possible: the runs between dropped ones.
    let runStart = -1;
    let runEnd = -1;
    const flushRun = () => {
      if (runStart >= 0) this.output.forward(split.data.subarray(runStart, runEnd));
      runStart = -1;
    };
    for (const frame of split.frames) {
      const verdict = this.examine(frame);
      if (verdict === 'close') return;
      if (verdict === 'drop') {
        flushRun();
        continue;
      }
      if (runStart < 0) runStart = frame.start;
      runEnd = frame.end;
      if (verdict === 'forward-last') break;
    }
    flushRun();
    if (this.inState('passing')) {
      const rest = this.splitter.takeBuffered();
      if (rest) this.output.forward(rest);
    } else {
      this.judgeBegun();
    }
  }

  /** A packet whose first byte is in but not the rest: closed now when that byte already breaks a rule. */
  private judgeBegun() {
    const firstByte = this.splitter.pendingFirstByte;
    if (firstByte === undefined || !this.options.conformance) return;
    if (this.inState('connecting')) {
      if (firstByte >> 4 !== PacketType.CONNECT)
        this.close('the first packet is not a CONNECT [MQTT-3.1.0-1]');
      return;
    }
    if (!this.inState('checking')) return;
    const problem = firstByteViolation(firstByte);
    if (problem) this.refuse(problem);
  }

  /** The protocol level the client speaks: the form of what is answered to it. */
  get protocolLevel(): number {
    return this.level;
  }

  /** Read through a method: `examine` changes the state behind TypeScript's narrowing. */
  private inState(state: GateState): boolean {
    return this.state === state;
  }

  /** Whether the packet goes on to Aedes ('forward-last': and nothing after it). */
  private examine(frame: Frame): Verdict {
    const { conformance } = this.options;
    const headerProblem = conformance ? firstByteViolation((frame.type << 4) | frame.flags) : undefined;
    if (headerProblem) return this.refuse(headerProblem);
    if (this.state === 'connecting') return this.examineConnect(frame);
    switch (frame.type) {
      case PacketType.CONNECT:
        return this.close('a second CONNECT [MQTT-3.1.0-2]');
      case PacketType.PUBLISH:
        return this.examinePublish(frame);
      case PacketType.SUBSCRIBE: {
        if (!conformance) return 'forward';
        const subscribe = readSubscribe(frame.body, this.level);
        if (!subscribe) return this.close('malformed SUBSCRIBE');
        return this.verdict(subscribeViolation(subscribe) ?? this.controlCharacters(subscribe));
      }
      case PacketType.UNSUBSCRIBE: {
        if (!conformance) return 'forward';
        const unsubscribe = readUnsubscribe(frame.body, this.level);
        if (!unsubscribe) return this.close('malformed UNSUBSCRIBE');
        return this.verdict(unsubscribeViolation(unsubscribe) ?? this.controlCharacters(unsubscribe));
      }
      default:
        if (!conformance) return 'forward';
        if (frame.type === PacketType.PUBREL && frame.body.length >= 2)
          this.awaitingRelease.delete(frame.body.readUInt16BE(0));
        return this.verdict(
          acknowledgmentViolation(frame.type, frame.body, this.level) ??
            emptyPacketViolation(frame.type, frame.body, this.level),
        );
    }
  }

  private examineConnect(frame: Frame): Verdict {
    if (frame.type !== PacketType.CONNECT)
      return this.close('the first packet is not a CONNECT [MQTT-3.1.0-1]');
    const level = connectLevel(frame.body);
    if (level === undefined) return this.close('malformed CONNECT');
    const levelProblem = protocolLevelViolation(level);
    if (levelProblem) {
      if (this.options.conformance) return this.refuse(levelProblem);
      // Aedes answers CONNACK 1 to the level it can read; nothing after it is for Aedes.
      this.state = 'discarding';
      return 'forward-last';
    }
    this.level = level;
    const connect = readConnect(frame.body);
    if (!connect) return this.close('malformed CONNECT');
    if (this.options.conformance) {
      const problem = connectViolation(connect) ?? this.controlCharacters(connect);
      if (problem) return this.refuse(problem);
    }
    const identity: Identity = {
      username: connect.username?.toString('utf8'),
      clientId: connect.clientId.toString('utf8'),
    };
    if (this.options.refusesAnonymous?.(identity.username)) {
      this.state = 'closed';
      this.output.anonymousRefused();
      return 'close';
    }
    this.identity = identity;
    this.problemInformation = wantsProblemInformation(connect.properties[0]);
    const { access, conformance, maxPacketSize } = this.options;
    // The identity is fixed at CONNECT and the rules while the broker runs: asked once, not per PUBLISH.
    this.restricted = access !== undefined && !access.publishesFreely(identity);
    const nothingToCheck = !conformance && maxPacketSize === Number.POSITIVE_INFINITY && !this.restricted;
    this.state = nothingToCheck ? 'passing' : 'checking';
    return 'forward';
  }

  private examinePublish(frame: Frame): Verdict {
    const { access, conformance } = this.options;
    const { identity, restricted } = this;
    if (!conformance && !restricted) return 'forward';
    const publish = readPublish(frame.flags, frame.body, this.level);
    if (!publish) return this.close('malformed PUBLISH');
    if (this.level === MQTT5) {
      // Judged, and held to the rules, by the topic the alias stands for.
      const aliasProblem = this.resolveTopicAlias(publish);
      if (aliasProblem) return this.refuse(aliasProblem);
    }
    if (conformance) {
      const problem = publishViolation(publish) ?? this.controlCharacters(publish);
      if (problem) return this.refuse(problem);
      if (publish.qos === 2 && publish.packetId !== undefined) {
        const { awaitingRelease } = this;
        // A resent PUBLISH (same identifier) takes no second place.
        if (!awaitingRelease.has(publish.packetId) && awaitingRelease.size >= MAX_QOS2_AWAITING_RELEASE)
          return this.close(`more than ${MAX_QOS2_AWAITING_RELEASE} QoS 2 publications awaiting PUBREL`);
        awaitingRelease.add(publish.packetId);
      }
    }
    // access and identity are set whenever restricted is.
    if (!restricted || !access || !identity) return 'forward';
    const topic = publish.topic.toString('utf8');
    if (access.mayPublish(identity, topic)) return 'forward';
    // MQTT 3.1.1 cannot tell a client its publication was refused: acknowledge it and drop it [MQTT-3.3.5-2].
    // MQTT 5 can: the acknowledgment says Not authorized (3.4.2.1).
    if (publish.packetId !== undefined) {
      const type = publish.qos === 1 ? PacketType.PUBACK : PacketType.PUBREC;
      const reasonCode = this.level === MQTT5 ? NOT_AUTHORIZED : undefined;
      const reason = this.problemInformation ? reasonStringProperty(PUBLISH_NOT_AUTHORIZED) : undefined;
      this.output.answer(acknowledgment(type, publish.packetId, reasonCode, reason));
      // A PUBREC with a reason code of 0x80 or above ends the exchange: no PUBREL will come (4.3.3).
      if (reasonCode !== undefined) this.awaitingRelease.delete(publish.packetId);
    }
    this.output.publishRefused(identity, topic);
    return 'drop';
  }

  /**
   * Sets or reads the Topic Alias of an MQTT 5 PUBLISH, as Aedes does after the gate: an alias with a
   * topic sets it, one without stands for the topic set before; 0 or above the maximum is a Protocol Error.
   */
  private resolveTopicAlias(publish: { topic: Buffer; properties: Buffer[] }): Violation | undefined {
    if (publish.properties.length === 0) return undefined;
    const alias = topicAliasOf(publish.properties);
    if (alias === undefined) return undefined;
    if (alias === 0) return { rule: 'MQTT-3.3.2-8', reason: 'topic alias 0' };
    if (alias > TOPIC_ALIAS_MAXIMUM)
      return {
        rule: 'MQTT-3.3.2-9',
        reason: `topic alias ${alias} above the maximum, ${TOPIC_ALIAS_MAXIMUM}`,
      };
    if (publish.topic.length > 0) {
      this.topicAliases.set(alias, Buffer.from(publish.topic));
      return undefined;
    }
    const topic = this.topicAliases.get(alias);
    if (!topic) return { rule: '3.3.2.3.4', reason: `topic alias ${alias} never set on this connection` };
    publish.topic = topic;
    return undefined;
  }

  /** With refuseControlCharacters: the first string field of the packet holding one. */
  private controlCharacters(fields: {
    clientId?: Buffer;
    username?: Buffer;
    willTopic?: Buffer;
    topic?: Buffer;
    filters?: Buffer[];
  }): Violation | undefined {
    if (!this.options.refuseControlCharacters) return undefined;
    const named: [Buffer | undefined, string][] = [
      [fields.clientId, 'the client id'],
      [fields.username, 'the user name'],
      [fields.willTopic, 'the will topic'],
      [fields.topic, 'the topic name'],
      ...(fields.filters ?? []).map((filter): [Buffer, string] => [filter, 'a topic filter']),
    ];
    for (const [bytes, field] of named) {
      const problem = bytes && controlCharacterViolation(bytes, field);
      if (problem) return problem;
    }
    return undefined;
  }

  /** 'forward' when there is no problem; otherwise the connection closes. A string is a malformed packet. */
  private verdict(problem: Violation | string | undefined): Verdict {
    if (problem === undefined) return 'forward';
    return typeof problem === 'string' ? this.close(problem) : this.refuse(problem);
  }

  private refuse(problem: Violation): 'close' {
    return this.close(`${problem.reason} [${problem.rule}]`, problem.connackCode);
  }

  private close(reason: string, connackCode?: number): 'close' {
    this.state = 'closed';
    this.output.violation(reason, connackCode);
    return 'close';
  }
}
