/**
 * The embedded broker's `$SYS/broker/…` topics, in Mosquitto's layout, and the statistics they and
 * the metrics endpoint show. Aedes' own `$SYS/<broker id>/…` topics (heartbeat, birth, new clients),
 * which the brokers of a Redis cluster read from each other, are a level apart and left alone.
 */
import type { Aedes } from 'aedes' with { 'resolution-mode': 'import' };
import { sysTopicValues, TrafficCounters, type BrokerStatistics } from '../traffic.js';
import type { GatedConnection } from '../gated-connection.js';
import type { OutgoingPackets } from './outgoing-packets.js';
import type { AedesClient, AedesInternals } from './types.js';

export interface StatisticsOptions {
  /** The package's version, shown with Aedes' in `$SYS/broker/version`. */
  version: string;
  /** How often the `$SYS` topics are published; 0: no `$SYS` topics (counted for the metrics only). */
  sysIntervalMs: number;
}

/** The broker counted: its clients, and where a failure to publish a `$SYS` topic goes. */
interface CountedBroker {
  readonly clientCount: number;
  emit(event: 'client-error', clientId: string, error: Error): boolean;
}

/** The Aedes fields read here that its types do not declare. */
interface AedesCounted {
  clients: Record<string, AedesClient>;
  version: string;
}

/** The counting of one running broker: its connections' traffic, and its `$SYS` topics if wanted. */
export class BrokerCounting {
  readonly traffic = new TrafficCounters();
  private readonly startedAt = Date.now();
  private readonly sysTopics: SysTopics | undefined;

  constructor(
    private readonly aedes: Aedes,
    private readonly options: StatisticsOptions,
    private readonly broker: CountedBroker,
  ) {
    const failed = (error: Error) => broker.emit('client-error', '', error);
    if (options.sysIntervalMs > 0)
      this.sysTopics = new SysTopics(aedes, () => this.read(), options.sysIntervalMs, failed);
  }

  /** Counts what goes through one client's connection, for as long as it lasts. */
  watch(client: AedesClient, connection: GatedConnection, outgoing: OutgoingPackets): void {
    countClientTraffic(this.traffic, client, connection, outgoing);
  }

  read(): Promise<BrokerStatistics> {
    return readStatistics(this.aedes, this.traffic, this.broker.clientCount, {
      startedAt: this.startedAt,
      version: this.options.version,
    });
  }

  close(): void {
    this.sysTopics?.close();
  }
}

/**
 * Counts in `traffic` what goes through one client's connection: bytes both ways, packets in (Aedes'
 * parser) and out; until the returned function is called.
 */
export function countClientTraffic(
  traffic: TrafficCounters,
  client: AedesClient,
  connection: GatedConnection,
  outgoing: OutgoingPackets,
): () => void {
  connection.traffic = traffic;
  outgoing.traffic = traffic;
  const onPacket = (packet: { cmd: string }) => {
    traffic.packetsReceived++;
    if (packet.cmd === 'publish') traffic.publishReceived++;
  };
  client._parser.on('packet', onPacket);
  return () => {
    if (connection.traffic === traffic) connection.traffic = undefined;
    if (outgoing.traffic === traffic) outgoing.traffic = undefined;
    client._parser.off('packet', onPacket);
  };
}

/**
 * The statistics of `aedes` now. The retained messages are counted by reading them from the store,
 * once per call: the `$SYS` interval and the metrics scrapes set the pace, no message does.
 */
export async function readStatistics(
  aedes: Aedes,
  traffic: TrafficCounters,
  clientsConnected: number,
  since: { startedAt: number; version: string },
): Promise<BrokerStatistics> {
  let subscriptions = 0;
  for (const client of Object.values((aedes as unknown as AedesCounted).clients))
    subscriptions += Object.keys(client.subscriptions).length;
  let retainedMessages = 0;
  const { persistence } = aedes as unknown as AedesInternals;
  // '#': the clients' retained messages, not the broker's own $SYS ones (persistence-patches.ts).
  const retained = persistence.createRetainedStreamCombi(['#'])[Symbol.asyncIterator]();
  while (!(await retained.next()).done) retainedMessages++;
  return {
    clientsConnected,
    subscriptions,
    retainedMessages,
    uptimeSeconds: Math.floor((Date.now() - since.startedAt) / 1000),
    version: `${since.version} (aedes ${(aedes as unknown as AedesCounted).version})`,
    traffic,
  };
}

/**
 * Publishes the statistics under `$SYS/broker/` every `intervalMs`, retained as Mosquitto's are,
 * each topic only when its value changed (the uptime at each interval).
 */
export class SysTopics {
  private readonly timer: NodeJS.Timeout;
  private readonly published = new Map<string, string>();

  constructor(
    private readonly aedes: Aedes,
    private readonly read: () => Promise<BrokerStatistics>,
    intervalMs: number,
    private readonly failed: (error: Error) => void,
  ) {
    this.timer = setInterval(() => this.publish(), intervalMs);
    this.timer.unref();
    this.publish();
  }

  private publish(): void {
    this.read().then((statistics) => {
      if (this.aedes.closed) return;
      for (const [name, value] of sysTopicValues(statistics)) {
        const topic = `$SYS/broker/${name}`;
        if (this.published.get(topic) === value) continue;
        this.published.set(topic, value);
        this.aedes.publish(
          { cmd: 'publish', topic, payload: Buffer.from(value), qos: 0, retain: true, dup: false },
          (error) => error && this.failed(error),
        );
      }
    }, this.failed);
  }

  close(): void {
    clearInterval(this.timer);
  }
}
