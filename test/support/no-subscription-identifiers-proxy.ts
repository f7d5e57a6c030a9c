import mqttPacket from 'mqtt-packet';
import { TcpProxy } from './tcp-proxy.js';

const V5 = { protocolVersion: 5 } as const;

/** What the proxy saw: the SUBSCRIBEs it passed, and how many it refused for carrying an identifier. */
export interface SubscribesSeen {
  passed: mqttPacket.ISubscribePacket[];
  refused: number;
}

/**
 * A loopback proxy in front of a real MQTT 5 broker that makes it one without Subscription
 * Identifiers, as AWS IoT Core is: its CONNACKs say so (Subscription Identifiers Available 0), and a
 * SUBSCRIBE that carries one gets what such a broker must answer, DISCONNECT 0xA1 (MQTT 5,
 * 3.2.2.3.12). Mosquitto has no setting for it.
 */
export function noSubscriptionIdentifiersProxy(
  port: number,
  brokerPort: number,
): { proxy: TcpProxy; seen: SubscribesSeen } {
  const seen: SubscribesSeen = { passed: [], refused: 0 };
  const proxy = new TcpProxy(port, brokerPort, (client, upstream) => {
    const closeBoth = () => {
      client.destroy();
      upstream.destroy();
    };
    // The client's parser learns the version from its CONNECT.
    const fromClient = mqttPacket.parser();
    fromClient.on('packet', (packet) => {
      if (packet.cmd === 'subscribe') {
        if (packet.properties?.subscriptionIdentifier !== undefined) {
          seen.refused++;
          client.end(mqttPacket.generate({ cmd: 'disconnect', reasonCode: 0xa1 }, V5));
          return upstream.destroy();
        }
        seen.passed.push(packet);
      }
      upstream.write(mqttPacket.generate(packet, V5));
    });
    const fromBroker = mqttPacket.parser(V5);
    fromBroker.on('packet', (packet) => {
      if (packet.cmd === 'connack')
        packet.properties = { ...packet.properties, subscriptionIdentifiersAvailable: false };
      client.write(mqttPacket.generate(packet, V5));
    });
    for (const parser of [fromClient, fromBroker]) parser.on('error', closeBoth);
    client.on('data', (bytes: Buffer) => fromClient.parse(bytes));
    upstream.on('data', (bytes: Buffer) => fromBroker.parse(bytes));
  });
  return { proxy, seen };
}
