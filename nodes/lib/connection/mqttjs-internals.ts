/**
 * The parts of MQTT.js's client that are not in its public API, and the patches of them that
 * concern any connection: how packets reach the socket and the outgoing store. The patches that
 * hold acknowledgments are in mqttjs-transport.ts, with the state they keep. Only these two files
 * touch MQTT.js internals.
 */
import type { Duplex, Writable } from 'node:stream';
import type { MqttClient, Packet } from 'mqtt';
import mqttPacket from 'mqtt-packet';
import type { IConnackPacket, IPublishPacket } from './types.js';
import { TurnBytes } from '../turn-bytes.js';

/** What of MQTT.js's client these patches and mqttjs-transport.ts use. */
export interface ClientInternals {
  _serverProperties?: IConnackPacket['properties'];
  _writePacket(packet: { cmd: string }, callback?: () => void): void;
  _storeAndSend(
    packet: OutgoingPacket,
    callback: ((error?: Error) => void) | undefined,
    cbStorePut: () => void,
  ): void;
  _removeTopicAliasAndRecoverTopicName(packet: OutgoingPacket): Error | undefined;
  _sendPacket(
    packet: { cmd: string; messageId?: number; reasonCode?: number },
    callback?: () => void,
    ...rest: unknown[]
  ): void;
}

/** A packet MQTT.js keeps in its outgoing store until acknowledged: a PUBLISH or a PUBREL. */
type OutgoingPacket = { cmd: string; messageId?: number } & Partial<
  Pick<IPublishPacket, 'topic' | 'properties'>
>;

export const internals = (client: MqttClient) => client as unknown as ClientInternals;

/** The packets of a message's flow, batched; SUBSCRIBE, PINGREQ, DISCONNECT and the others are not. */
const MESSAGE_PACKETS = new Set(['publish', 'puback', 'pubrec', 'pubrel', 'pubcomp']);

/** A turn's packets for one stream: mqtt-packet's answer to a packet it cannot encode goes to the stream. */
class PendingWrites extends TurnBytes {
  constructor(readonly stream: Duplex) {
    super();
  }

  destroy(error?: Error): void {
    this.stream.destroy(error);
  }

  /** Writes the turn's bytes, unless the stream has closed since (MQTT.js then resends, or fails, the packets). */
  flush(): void {
    if (this.stream.destroyed) return;
    const bytes = this.take();
    if (bytes) this.stream.write(bytes);
  }
}

/**
 * Patch of MQTT.js's internal _writePacket, so the packets of one event-loop turn leave in one
 * write. Node-RED hands each message to the out node from a setImmediate of its own, and
 * mqtt-packet uncorks the socket on the next tick after each packet: every PUBLISH, and every
 * PUBACK an in node's connection answers, was a writev system call of its own, 44–58 % of the
 * Node-RED process's time through Mosquitto at QoS 0 and 1 (bench `tcp --profile`). The packets
 * of a turn are encoded into one buffer (TurnBytes), written from a setImmediate once the turn's other
 * immediates (Node-RED's deliveries) have run; any other packet (SUBSCRIBE, PINGREQ, …) goes at
 * once, after them. A write past the stream's high-water mark calls back at its next 'drain' as
 * MQTT.js does, through one listener for all of them, not one each.
 */
export function batchWrites(client: MqttClient) {
  const patched = internals(client);
  const write = patched._writePacket.bind(client);
  /** The bytes waiting for the end of this turn, while there are. */
  let turn: PendingWrites | undefined;
  const flush = (pending: PendingWrites) => {
    if (turn !== pending) return;
    turn = undefined;
    pending.flush();
  };
  let drainWaiters: { stream: Duplex; callbacks: (() => void)[] } | undefined;
  patched._writePacket = (packet, callback) => {
    const stream = client.stream as Duplex;
    const batched = MESSAGE_PACKETS.has(packet.cmd);
    if (turn && turn.stream !== stream) flush(turn);
    if (!batched && !turn) {
      write(packet);
    } else {
      if (!turn) {
        const pending = new PendingWrites(stream);
        turn = pending;
        setImmediate(() => flush(pending));
      }
      client.emit('packetsend', packet as Packet);
      mqttPacket.writeToStream(packet as Packet, turn as unknown as Writable, client.options);
      // Any other packet leaves at once, with those before it: a node that asked for a SUBSCRIBE
      // counts on it being on its way before what it publishes next through another connection.
      if (!batched) flush(turn);
    }
    if (!callback) return;
    // The last flush's stream.write returned false: writableNeedDrain is set until the drain.
    if (!stream.writableNeedDrain || callback === client.noop) return callback();
    if (drainWaiters?.stream !== stream) {
      const waiters = { stream, callbacks: [] as (() => void)[] };
      drainWaiters = waiters;
      stream.once('drain', () => {
        if (drainWaiters === waiters) drainWaiters = undefined;
        for (const waiting of waiters.callbacks) waiting();
      });
    }
    drainWaiters.callbacks.push(callback);
  };
}

/**
 * Replaces MQTT.js's internal _storeAndSend, which deep-copies (rfdc) every QoS 1/2 PUBLISH for its
 * outgoing store, payload bytes included, so that what it resends after a reconnect has its topic
 * name where the packet sent carries a topic alias. A shallow copy with its own properties object
 * does the same: MQTT.js changes only the packet's topic and topic alias, and the payload is the
 * out node's, which neither MQTT.js nor this package writes to. The rest is MQTT.js 5.16's code.
 */
export function storeWithoutCopy(client: MqttClient) {
  const patched = internals(client);
  patched._storeAndSend = (packet, callback, cbStorePut) => {
    let stored = packet;
    if (packet.cmd === 'publish') {
      stored = { ...packet, ...(packet.properties ? { properties: { ...packet.properties } } : {}) };
      const error = patched._removeTopicAliasAndRecoverTopicName(stored);
      if (error) return callback?.(error);
    }
    client.outgoingStore.put(stored as never, (error?: Error) => {
      if (error) return callback?.(error);
      cbStorePut();
      patched._writePacket(packet, callback);
    });
  };
}
