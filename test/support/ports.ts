import net from 'node:net';

/**
 * Ports are drawn below Linux's ephemeral range (32768 and up), from which the kernel gives every
 * port asked for as 0 and every outgoing connection: a port freed here and bound a moment later by
 * the process it is for is then not handed to another server in between (a test once connected an
 * MQTT client to a Node-RED HTTP server that way). Not given twice by this process.
 */
const FIRST_PORT = 20_000;
const PORTS = 12_000;
const given = new Set<number>();

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A TCP port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = FIRST_PORT + Math.floor(Math.random() * PORTS);
    if (given.has(port) || !(await bindable(port))) continue;
    given.add(port);
    return port;
  }
}

/** Whether something accepts TCP connections on 127.0.0.1:`port` right now. */
export function isListening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
