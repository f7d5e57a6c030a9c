import mqtt from 'mqtt';
import { DEFAULT_LIMITS } from '../../nodes/lib/broker/limits.js';
import { delay } from './wait.js';

/** An MQTT.js client on a TCP port or a URL, retried while the broker's listener is still starting. */
export async function connectWhenListening(where: number | string, extra: mqtt.IClientOptions = {}) {
  const deadline = Date.now() + 10_000;
  const options = { protocolVersion: 4 as const, reconnectPeriod: 0, connectTimeout: 500, ...extra };
  for (;;) {
    try {
      return await (typeof where === 'number'
        ? mqtt.connectAsync({ ...options, host: '127.0.0.1', port: where })
        : mqtt.connectAsync(where, options));
    } catch (error) {
      // A CONNACK refusal (a numeric code) is the broker's answer, not a listener still starting.
      if (typeof (error as { code?: unknown }).code === 'number' || Date.now() > deadline) throw error;
      await delay(50);
    }
  }
}

/** What an embedded broker node passes by default: anonymous clients allowed everything, the default limits. */
export const OPEN_BROKER = {
  access: { users: [], anonymous: { publish: ['#'], subscribe: ['#'] } },
  limits: DEFAULT_LIMITS,
};
