import net from 'node:net';
import mqttPacket from 'mqtt-packet';

const V5 = { protocolVersion: 5 } as const;

/**
 * A loopback proxy in front of a real MQTT 5 broker that makes it one without Subscription
 * Identifiers, as AWS IoT Core is: its CONNACKs say so (Subscription Identifiers Available 0), and a
 * SUBSCRIBE that carries one gets what such a broker must answer, DISCONNECT 0xA1 (MQTT 5,
 * 3.2.2.3.12). Mosquitto has no setting for it. Every SUBSCRIBE that passes is kept, for the test.
 */
export class NoSubscriptionIdentifiersProxy {
  readonly subscribes: mqttPacket.ISubscribePacket[] = [];
  /** SUBSCRIBEs refused for carrying an identifier. */
  refused = 0;
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();

  constructor(
    readonly port: number,
    private readonly targetPort: number,
  ) {}

  open(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.targetPort, '127.0.0.1');
      const closeBoth = () => {
        client.destroy();
        upstream.destroy();
      };
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.once('close', () => this.sockets.delete(socket));
        socket.on('error', closeBoth);
      }
      // The client's parser learns the version from its CONNECT.
      const fromClient = mqttPacket.parser();
      fromClient.on('packet', (packet) => {
        if (packet.cmd === 'subscribe') {
          if (packet.properties?.subscriptionIdentifier !== undefined) {
            this.refused++;
            client.end(mqttPacket.generate({ cmd: 'disconnect', reasonCode: 0xa1 }, V5));
            return upstream.destroy();
          }
          this.subscribes.push(packet);
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
    this.server = server;
    return new Promise((resolve) => server.listen(this.port, '127.0.0.1', resolve));
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = undefined;
  }
}
