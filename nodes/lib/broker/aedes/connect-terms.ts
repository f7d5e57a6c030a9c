/**
 * What a connection's CONNECT settles beyond what Aedes does: the packets the client accepts
 * (outgoing-packets.ts) and, for a network client on MQTT 5, the keep-alive the broker holds it to.
 * Read in Aedes' preConnect hook, before Aedes handles the CONNECT.
 */
import type { ConnectPacket } from 'aedes' with { 'resolution-mode': 'import' };
import { outgoingOf, type OutgoingPacket } from './outgoing-packets.js';
import type { AedesClient, AedesPersistence } from './types.js';

/** The max keep-alive of each network connection, by the stream Aedes reads; none for in-process ones. */
const maxKeepAlives = new WeakMap<object, number>();

/** Holds the MQTT 5 client on `stream` to `maxKeepAlive` seconds (0: none). */
export function limitKeepAlive(stream: object, maxKeepAlive: number): void {
  if (maxKeepAlive > 0) maxKeepAlives.set(stream, maxKeepAlive);
}

/** Reads the client's CONNECT: what it accepts, and the keep-alive it is held to. */
export function applyConnectTerms(client: AedesClient, packet: ConnectPacket): void {
  outgoingOf(client.conn)?.connecting(packet.properties);
  const maxKeepAlive = maxKeepAlives.get(client.conn);
  const keepalive = packet.keepalive ?? 0;
  // MQTT 5 tells the client the keep-alive it must use [MQTT-3.2.2-21]; MQTT 3.1.1 has no way to, and
  // the client keeps its own, as with Mosquitto's max_keepalive (Aedes' keepaliveLimit would refuse it).
  if (maxKeepAlive && packet.protocolVersion === 5 && (keepalive === 0 || keepalive > maxKeepAlive))
    client._serverKeepAlive = maxKeepAlive;
}

/**
 * A message not sent for being too large, taken as sent [MQTT-3.1.2-25]: a QoS 1/2 one leaves the
 * client's session as its acknowledgment would take it (a clean session stored nothing).
 */
export async function takeAsSent(
  persistence: AedesPersistence,
  client: AedesClient,
  packet: OutgoingPacket,
): Promise<void> {
  const { messageId } = packet;
  if (!packet.qos || messageId === undefined || client.clean) return;
  await persistence.outgoingClearMessageId(client, { messageId });
}
