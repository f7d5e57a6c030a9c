/**
 * Where network clients reach the embedded broker: TCP, TLS, and WebSocket on
 * Node-RED's own HTTP server or on an HTTPS server of the broker's own.
 */
import https from 'node:https';
import net from 'node:net';
import tls, { type TlsOptions } from 'node:tls';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, createWebSocketStream } from 'ws';

/** Where a network client comes from. */
export interface ClientOrigin {
  /** Its address and port, and the kind of listener, for the log. */
  description: string;
  /** Whether it connects from this machine (a loopback address). */
  local: boolean;
}

/** A new client transport and where it comes from. */
export type Admit = (transport: Duplex, origin: ClientOrigin, req?: IncomingMessage) => void;

/** The transports one listener hands over, and how to stop it. */
export interface Listener {
  address: net.AddressInfo;
  close(): Promise<void>;
}

function describe(socket: net.Socket, kind: string): ClientOrigin {
  const address = socket.remoteAddress ?? '';
  return {
    description: `${address}:${socket.remotePort}${kind ? ` (${kind})` : ''}`,
    local: isLoopback(address),
  };
}

/** 127.0.0.0/8 and ::1, written as IPv4 or as IPv4 mapped into IPv6. */
export function isLoopback(address: string): boolean {
  const ipv4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return net.isIPv4(ipv4) ? ipv4.startsWith('127.') : address === '::1';
}

function listen(server: net.Server, port: number, bind: string): Promise<net.AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, bind, () => {
      server.off('error', reject);
      resolve(server.address() as net.AddressInfo);
    });
  });
}

/**
 * Stops `server` and destroys every socket it accepted, those still in their
 * TLS handshake or waiting to be refused included, so the port is free at once.
 */
function closer(server: net.Server, alsoClose?: () => void): () => Promise<void> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  return () =>
    new Promise((resolve) => {
      alsoClose?.();
      server.close(() => resolve());
      for (const socket of sockets) socket.destroy();
    });
}

/**
 * Past twice the connection limit, sockets are dropped as they are accepted:
 * even the connections refused with CONNACK 3 must not pile up.
 */
function capSockets(server: net.Server, maxConnections: number) {
  server.maxConnections = 2 * maxConnections;
}

export async function listenTcp(
  port: number,
  bind: string,
  maxConnections: number,
  admit: Admit,
): Promise<Listener> {
  const server = net.createServer((socket) => {
    // Nagle's algorithm would hold small MQTT packets back for up to 40 ms.
    socket.setNoDelay(true);
    admit(socket, describe(socket, ''));
  });
  capSockets(server, maxConnections);
  return { address: await listen(server, port, bind), close: closer(server) };
}

export interface TlsListenerOptions {
  port: number;
  bind: string;
  maxConnections: number;
  /** A handshake not done by then is dropped, as a CONNECT not sent in time is. */
  handshakeTimeoutMs: number;
  tls: TlsOptions;
}

export async function listenTls(options: TlsListenerOptions, admit: Admit): Promise<Listener> {
  const server = tls.createServer(
    { ...options.tls, handshakeTimeout: options.handshakeTimeoutMs },
    (socket) => {
      socket.setNoDelay(true);
      admit(socket, describe(socket, 'TLS'));
    },
  );
  // A failed handshake (wrong certificate, plain text on the TLS port) closes that socket only.
  server.on('tlsClientError', () => undefined);
  capSockets(server, options.maxConnections);
  return { address: await listen(server, options.port, options.bind), close: closer(server) };
}

function webSocketServer(admit: Admit, kind: string): WebSocketServer {
  const wsServer = new WebSocketServer({ noServer: true });
  wsServer.on('connection', (ws, req) => {
    const stream = createWebSocketStream(ws);
    stream.on('error', () => ws.terminate());
    admit(stream, describe(req.socket, kind), req);
  });
  return wsServer;
}

function closeWebSockets(wsServer: WebSocketServer) {
  for (const ws of wsServer.clients) ws.terminate();
  wsServer.close();
}

/** MQTT over WebSocket on `path` of Node-RED's own HTTP server (HTTPS when Node-RED is). */
export function attachWebSocket(httpServer: HttpServer, path: string, admit: Admit): () => void {
  const wsServer = webSocketServer(admit, 'WebSocket');
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (pathname !== path) return;
    wsServer.handleUpgrade(req, socket, head, (ws) => wsServer.emit('connection', ws, req));
  };
  httpServer.on('upgrade', onUpgrade);
  return () => {
    httpServer.off('upgrade', onUpgrade);
    closeWebSockets(wsServer);
  };
}

/** MQTT over secure WebSocket on an HTTPS server of the broker's own, on every path. */
export async function listenSecureWebSocket(options: TlsListenerOptions, admit: Admit): Promise<Listener> {
  const server = https.createServer(
    { ...options.tls, handshakeTimeout: options.handshakeTimeoutMs },
    (_req, res) => {
      res.writeHead(426, { Connection: 'close' }).end('MQTT over WebSocket only');
    },
  );
  server.on('tlsClientError', () => undefined);
  const wsServer = webSocketServer(admit, 'secure WebSocket');
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
    wsServer.handleUpgrade(req, socket, head, (ws) => wsServer.emit('connection', ws, req)),
  );
  capSockets(server, options.maxConnections);
  return {
    address: await listen(server, options.port, options.bind),
    close: closer(server, () => closeWebSockets(wsServer)),
  };
}
