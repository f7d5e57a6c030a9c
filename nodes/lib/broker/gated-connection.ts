/**
 * The stream Aedes handles for one client: the client's transport (TCP, TLS,
 * WebSocket or the in-process pipe) with a PacketGate on the way in.
 */
import { Duplex } from 'node:stream';
import type { Identity } from './acl.js';
import { PacketGate, type GateOptions } from './packet-gate.js';
import { FrameSplitter, PacketType, connackRefusal, connectLevel } from './mqtt-frames.js';
import { reasonStringProperty } from './mqtt5-properties.js';
import type { TrafficCounters } from './traffic.js';
import { TurnBytes } from '../turn-bytes.js';

/**
 * Emits 'violation' (reason) when the gate closes the connection, 'anonymous-refused' when it
 * refuses an anonymous client from another machine, and 'publish-refused' (identity, topic)
 * when it drops a publication.
 */
export class GatedConnection extends Duplex {
  private readonly gate: PacketGate;
  /** Answers of the gate waiting for the CONNACK, which must come first [MQTT-3.2.0-1]. */
  private heldAnswers: Buffer[] | undefined = [];
  /** Where the bytes both ways are counted, when the broker counts them. */
  traffic: TrafficCounters | undefined;
  /** Whether the packets written in one turn of the event loop go out together (see holdUntilTurnEnds). */
  private coalescing = false;
  /** A flush at the end of this turn is due. */
  private flushScheduled = false;
  /** What was written in this turn, for the flush (see holdUntilTurnEnds). */
  private readonly held = new TurnBytes();

  constructor(
    private readonly transport: Duplex,
    private readonly options: GateOptions & {
      /** Packets written in one turn of the event loop leave in one write, from the turn after the CONNACK. */
      coalesceWrites?: boolean;
    },
  ) {
    super({ allowHalfOpen: false });
    this.gate = new PacketGate(options, {
      forward: (bytes) => {
        if (!this.push(bytes)) transport.pause();
      },
      answer: (bytes) => {
        if (this.heldAnswers) this.heldAnswers.push(bytes);
        else if (this.flushScheduled)
          this.held.write(bytes); // in order with what this turn has written
        else transport.write(bytes);
      },
      publishRefused: (identity, topic) => this.emit('publish-refused', identity, topic),
      violation: (reason, connackCode) => {
        this.emit('violation', reason);
        if (connackCode === undefined) return void this.destroy();
        this.refuse(connackCode, reason);
      },
      anonymousRefused: () => {
        this.emit('anonymous-refused');
        this.refuse(5, 'anonymous clients from the network are not allowed');
      },
    });
    transport.on('data', (chunk: Buffer) => {
      if (this.traffic) this.traffic.bytesReceived += chunk.length;
      this.gate.accept(chunk);
    });
    transport.once('end', () => this.push(null));
    transport.once('error', (error) => this.destroy(error));
    transport.once('close', () => this.destroy());
  }

  /** Aedes never saw this CONNECT: the refusal goes out, then the connection closes [MQTT-3.2.2-5]. */
  private refuse(connackCode: number, reason: string) {
    const refusal = connackRefusal(connackCode, this.gate.protocolLevel, reasonStringProperty(reason));
    this.transport.end(refusal, () => this.destroy());
  }

  /** Who the client said it is, once its CONNECT has passed. */
  get identity(): Identity | undefined {
    return this.gate.identity;
  }

  /** Aedes accepted the connection: what the gate answered meanwhile can go out now. */
  connectionAccepted(): void {
    const held = this.heldAnswers;
    this.heldAnswers = undefined;
    for (const bytes of held ?? []) this.transport.write(bytes);
    // Not in the CONNACK's own turn: a client reading the CONNACK and what follows it in one segment
    // would parse the messages queued for its session before its code after the connect could listen.
    if (this.options.coalesceWrites) setImmediate(() => (this.coalescing = true));
  }

  /**
   * Holds what is written until the end of this turn of the event loop, so that the packets written
   * meanwhile leave in one write of one buffer. Aedes writes each delivery from a setImmediate of its
   * own, and mqtt-packet uncorks after each packet: each packet was a writev of its own, 28 % of the
   * broker's time at QoS 1 and 2 with two MQTT.js clients (bench, clients job), where Mosquitto writes
   * what it has queued for a socket at once. One buffer (TurnBytes), not a corked transport.
   */
  private holdUntilTurnEnds() {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(this.flush);
  }

  private readonly flush = () => {
    if (!this.flushScheduled) return;
    this.flushScheduled = false;
    const bytes = this.held.take();
    if (bytes) this.transport.write(bytes);
  };

  /** Sends `chunk` now, or with the rest of this turn's once the connection coalesces. */
  private send(chunk: Buffer): boolean {
    if (this.traffic) this.traffic.bytesSent += chunk.length;
    if (!this.coalescing) return this.transport.write(chunk);
    this.holdUntilTurnEnds();
    this.held.write(chunk);
    return !this.transport.writableNeedDrain;
  }

  override _read(): void {
    this.transport.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.send(chunk)) callback();
    else this.transport.once('drain', () => callback());
  }

  override _writev(
    chunks: { chunk: Buffer; encoding: BufferEncoding }[],
    callback: (error?: Error | null) => void,
  ): void {
    if (!this.coalescing) this.transport.cork();
    let flowing = true;
    for (const { chunk } of chunks) flowing = this.send(chunk);
    if (!this.coalescing) this.transport.uncork();
    if (flowing) callback();
    else this.transport.once('drain', () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.transport.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // What was written before (a DISCONNECT with its reason code) leaves before the close, as uncorked.
    this.flush();
    this.transport.destroy();
    callback(error);
  }
}

/** What a CONNACK refusing a connection before Aedes says, by return code (as Reason String on MQTT 5). */
const REFUSALS: Record<number, string> = { 3: 'too many connections' };

/**
 * Answers the client's first bytes (its CONNECT) with a CONNACK refusing it and
 * closes, without Aedes; a client that sends nothing is closed after `timeoutMs`.
 */
export function refuseConnection(transport: Duplex, returnCode: number, timeoutMs: number): void {
  const timer = setTimeout(() => transport.destroy(), timeoutMs);
  transport.once('close', () => clearTimeout(timer));
  transport.on('error', () => transport.destroy());
  transport.once('data', (chunk: Buffer) => {
    transport.end(
      connackRefusal(returnCode, levelOf(chunk), reasonStringProperty(REFUSALS[returnCode] ?? 'refused')),
    );
    // Whatever else comes is read and dropped, so the client's own close is seen.
    transport.resume();
  });
}

/** The protocol level of the CONNECT `chunk` starts with (an MQTT 5 client reads a CONNACK of its own form); 4 otherwise. */
function levelOf(chunk: Buffer): number {
  const split = new FrameSplitter(Number.POSITIVE_INFINITY).push(chunk);
  const first = typeof split === 'string' ? undefined : split.frames[0];
  return (first?.type === PacketType.CONNECT && connectLevel(first.body)) || 4;
}
