/**
 * What the embedded broker's MQTT connections carried since it started: the counters of its `$SYS`
 * topics and of the metrics endpoint. Kept only when one of them is on: a broker without them
 * passes no counter to its connections, and nothing on a message's path looks for one.
 */
export class TrafficCounters {
  bytesReceived = 0;
  bytesSent = 0;
  /** MQTT packets of every type, as Mosquitto's `messages/received` and `messages/sent`. */
  packetsReceived = 0;
  packetsSent = 0;
  /** PUBLISH packets only. */
  publishReceived = 0;
  publishSent = 0;
}

/** A broker's counters and gauges at one moment. */
export interface BrokerStatistics {
  clientsConnected: number;
  /** Persistent sessions whose client is connected nowhere. */
  clientsDisconnected: number;
  /** Subscriptions of the connected clients. */
  subscriptions: number;
  /** Retained messages of the clients' topics (the broker's own `$SYS` ones not counted). */
  retainedMessages: number;
  uptimeSeconds: number;
  /** The package's version and the broker library's. */
  version: string;
  traffic: TrafficCounters;
}

/** Mosquitto's topic layout: the topic under `$SYS/broker/` and the payload of each value. */
export function sysTopicValues(statistics: BrokerStatistics): [topic: string, payload: string][] {
  const { traffic } = statistics;
  return [
    ['clients/connected', String(statistics.clientsConnected)],
    ['clients/disconnected', String(statistics.clientsDisconnected)],
    ['clients/total', String(statistics.clientsConnected + statistics.clientsDisconnected)],
    ['messages/received', String(traffic.packetsReceived)],
    ['messages/sent', String(traffic.packetsSent)],
    ['publish/messages/received', String(traffic.publishReceived)],
    ['publish/messages/sent', String(traffic.publishSent)],
    ['bytes/received', String(traffic.bytesReceived)],
    ['bytes/sent', String(traffic.bytesSent)],
    ['subscriptions/count', String(statistics.subscriptions)],
    ['retained messages/count', String(statistics.retainedMessages)],
    ['uptime', `${statistics.uptimeSeconds} seconds`],
    ['version', statistics.version],
  ];
}
