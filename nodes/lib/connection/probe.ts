import { BrokerConnection } from './broker-connection.js';
import type { ConnectionOptions, DisconnectReason } from './types.js';

/** How one connection attempt ended: what the broker config dialog's "Test connection" reports. */
export type ProbeResult =
  | { outcome: 'connected' }
  | { outcome: 'failed'; reason: DisconnectReason }
  /** Neither a CONNACK nor a failure within the time allowed (a firewall dropping packets, say). */
  | { outcome: 'timeout' };

/**
 * Connects once with `options`, reports how the first attempt ended, and closes.
 * Nothing is published and no subscription is made; the caller chooses a client ID
 * and session that leave the broker's other sessions alone.
 */
export async function probeConnection(options: ConnectionOptions, timeoutMs: number): Promise<ProbeResult> {
  // MQTT.js gives up on its own a little later, so the outcome past the deadline is always 'timeout'.
  const connection = new BrokerConnection({ ...options, connectTimeout: timeoutMs + 1000 });
  const user = {};
  let timer: NodeJS.Timeout | undefined;
  const ended = new Promise<ProbeResult>((resolve) => {
    timer = setTimeout(() => resolve({ outcome: 'timeout' }), timeoutMs);
    connection.on('status', (status) => {
      if (status.state === 'connected') resolve({ outcome: 'connected' });
      else if (status.state === 'disconnected')
        resolve({ outcome: 'failed', reason: status.reason ?? { code: 'lost', message: 'connection lost' } });
    });
  });
  connection.register(user);
  try {
    return await ended;
  } finally {
    clearTimeout(timer);
    await connection.close();
  }
}
