import net from 'node:net';

/** How a proxy joins a client's socket to the broker's: byte for byte, unless told otherwise. */
export type Wiring = (client: net.Socket, upstream: net.Socket) => void;

const pipeBothWays: Wiring = (client, upstream) => {
  client.pipe(upstream).pipe(client);
};

/** A loopback TCP proxy to `targetPort` that can be opened and cut: an outage for the clients behind it only. */
export class TcpProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();

  constructor(
    readonly port: number,
    private readonly targetPort: number,
    private readonly wire: Wiring = pipeBothWays,
  ) {}

  open(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.targetPort, '127.0.0.1');
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.setNoDelay(true);
        socket.once('close', () => this.sockets.delete(socket));
        socket.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      this.wire(client, upstream);
    });
    this.server = server;
    return new Promise((resolve) => server.listen(this.port, '127.0.0.1', resolve));
  }

  async cut(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = undefined;
  }
}
