/**
 * DISCONNECT 0x97 (Quota exceeded) for a connected MQTT 5 client that lets its queue grow past the
 * offline queue bound by acknowledging nothing.
 *
 * The bound trims the queue of a client that is away; a connected client's queue holds the messages
 * sent to it and not yet acknowledged, which Aedes sends without waiting (it does not hold to the
 * client's Receive Maximum), so the queue of a client that stopped acknowledging grows without end.
 * 0x97 is the DISCONNECT reason code for "an implementation or administrative imposed limit has been
 * exceeded"; nothing in MQTT lets a broker tell a client that comes back that messages were dropped
 * while it was away (a CONNACK with 0x97 would refuse it), so this is where the bound is told.
 *
 * A queue over the bound is not enough: a client that acknowledges as it reads can be over it for a
 * moment in a burst. It must also have acknowledged nothing for as long as the broker waits for a
 * packet from it (one and a half times its keep-alive). Once disconnected, it is away and the bound
 * trims its queue as for any client away. MQTT 3.1.1 has no DISCONNECT from the server: such a client
 * is left as before.
 */
import type { Aedes } from 'aedes' with { 'resolution-mode': 'import' };
import type { AedesClient } from './types.js';

/** DISCONNECT reason code: an implementation or administrative imposed limit has been exceeded. */
export const QUOTA_EXCEEDED = 0x97;

/** How long a client without keep-alive (0) may acknowledge nothing: as MQTT.js's default keep-alive of 60 s would allow. */
const QUIET_WITHOUT_KEEPALIVE_MS = 90_000;

export class QuotaDisconnect {
  /** When each connected client last acknowledged a message (or connected). */
  private readonly lastProgress = new WeakMap<AedesClient, number>();

  constructor(
    private readonly aedes: Aedes,
    private readonly disconnected: (clientId: string, bound: number) => void,
  ) {
    const progressed = (client: AedesClient) => this.lastProgress.set(client, Date.now());
    aedes.on('clientReady', (client) => progressed(client as AedesClient));
    // PUBACK and PUBCOMP: the client took a message off its queue.
    aedes.on('ack', (_packet, client) => progressed(client as AedesClient));
  }

  /** The MQTT 5 client `clientId`, connected here, if it has acknowledged nothing for too long. */
  private quietClient(clientId: string): AedesClient | undefined {
    const clients = (this.aedes as unknown as { clients: Record<string, AedesClient | undefined> }).clients;
    const client = clients[clientId];
    if (!client || client.version !== 5 || !client.connected || client.closed) return undefined;
    const quiet = Date.now() - (this.lastProgress.get(client) ?? Date.now());
    const keepalive = client._keepaliveInterval ?? -1;
    return quiet < (keepalive > 0 ? keepalive : QUIET_WITHOUT_KEEPALIVE_MS) ? undefined : client;
  }

  /** Whether `clientId` would be told 0x97 were its queue over the bound: asked before counting it. */
  isQuiet(clientId: string): boolean {
    return this.quietClient(clientId) !== undefined;
  }

  /** The queue of connected client `clientId` holds more than `bound` messages. */
  overBound(clientId: string, bound: number): void {
    const client = this.quietClient(clientId);
    if (!client) return;
    // Seen once: the client closes, and the next message for it finds it away.
    this.lastProgress.set(client, Number.POSITIVE_INFINITY);
    this.disconnected(clientId, bound);
    client.disconnect(
      {
        reasonCode: QUOTA_EXCEEDED,
        properties: { reasonString: `more than ${bound} messages queued and none acknowledged` },
      },
      () => undefined,
    );
  }
}
