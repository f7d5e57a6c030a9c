import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { findBinary } from './services.js';
import { freePort } from './ports.js';
import { delay } from './wait.js';
import { temporaryDirectory } from './node-red-process.js';

/** Started as root, Mosquitto drops to its own user: its files must be readable by others. */
export function readableTempDir(prefix: string): string {
  const dir = temporaryDirectory(prefix);
  chmodSync(dir, 0o755);
  return dir;
}

export const mosquittoBinary = findBinary(['/usr/sbin/mosquitto', 'mosquitto']);

export interface MosquittoOptions {
  /** user name → password; when set, anonymous clients are refused. */
  users?: Record<string, string>;
  /** Keeps sessions and queued messages on disk across a graceful (SIGTERM) restart. */
  persistence?: boolean;
  /** Lifts the default bound of 1,000 queued messages per client, past which Mosquitto drops messages. */
  unlimitedQueues?: boolean;
  /**
   * Lifts the default bound of 20 QoS 1 and 2 messages in flight per client (`max_inflight_messages 0`),
   * past which Mosquitto queues what it sends to a client: the benchmark keeps hundreds in flight.
   */
  unlimitedInflight?: boolean;
  /** Adds a TLS listener on `tlsPort` with this server certificate. */
  tls?: { certFile: string; keyFile: string; caFile: string };
}

/** A private Mosquitto on a free loopback port, from a config written here (never the system's 1883). */
export class Mosquitto {
  readonly dir = readableTempDir('durable-mqtt-mosquitto-');
  port = 0;
  tlsPort = 0;
  private process: ChildProcess | undefined;
  output = '';

  constructor(private readonly options: MosquittoOptions = {}) {}

  async start(): Promise<void> {
    if (!mosquittoBinary) throw new Error("mosquitto is not installed: run 'apt-get install -y mosquitto'");
    if (!this.port) this.port = await freePort();
    const persistence = this.options.persistence
      ? ['persistence true', `persistence_location ${this.dir}/`]
      : ['persistence false'];
    const config = [
      'per_listener_settings false',
      ...persistence,
      ...(this.options.unlimitedQueues ? ['max_queued_messages 0'] : []),
      ...(this.options.unlimitedInflight ? ['max_inflight_messages 0'] : []),
      'log_type notice',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
    ];
    config.push(`listener ${this.port} 127.0.0.1`);
    if (this.options.tls) {
      if (!this.tlsPort) this.tlsPort = await freePort();
      const { certFile, keyFile, caFile } = this.options.tls;
      config.push(
        `listener ${this.tlsPort} 127.0.0.1`,
        `cafile ${caFile}`,
        `certfile ${certFile}`,
        `keyfile ${keyFile}`,
      );
    }
    if (this.options.users) {
      const passwordFile = path.join(this.dir, 'passwords');
      writeFileSync(
        passwordFile,
        Object.entries(this.options.users)
          .map(([user, pass]) => `${user}:${pass}`)
          .join('\n') + '\n',
      );
      // mosquitto hashes a plain-text file only through mosquitto_passwd -U.
      const { execFileSync } = await import('node:child_process');
      execFileSync('mosquitto_passwd', ['-U', passwordFile]);
      chmodSync(passwordFile, 0o644);
      config.push('allow_anonymous false', `password_file ${passwordFile}`);
    } else {
      config.push('allow_anonymous true');
    }
    const configFile = path.join(this.dir, 'mosquitto.conf');
    writeFileSync(configFile, config.join('\n') + '\n');
    const child = spawn(mosquittoBinary, ['-c', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.process = child;
    child.stdout!.on('data', (chunk) => (this.output += chunk));
    child.stderr!.on('data', (chunk) => (this.output += chunk));
    await this.waitUntilListening();
  }

  /** SIGKILL by default; SIGTERM lets Mosquitto save its persistence file first. */
  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.process;
    this.process = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    await exited;
  }

  async restart(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await this.stop(signal);
    await this.start();
  }

  /** Stops it and removes its files. */
  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async waitUntilListening(): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (this.process?.exitCode !== null) throw new Error(`mosquitto exited: ${this.output}`);
      const open = await new Promise<boolean>((resolve) => {
        const socket = net.connect(this.port, '127.0.0.1', () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('error', () => resolve(false));
      });
      if (open) return;
      await delay(50);
    }
    throw new Error(`mosquitto did not listen on ${this.port}: ${this.output}`);
  }
}

/** A message an observing client received. */
export interface Observed {
  topic: string;
  payload: string;
  packet: mqtt.IPublishPacket;
}

/** An MQTT.js client of the broker on `port`, subscribed to `filter` at QoS 1, and what it receives. */
export async function observeBroker(
  port: number,
  filter: string,
  protocolVersion: 4 | 5,
): Promise<{ client: MqttClient; seen: Observed[] }> {
  const client = await mqtt.connectAsync({ host: '127.0.0.1', port, protocolVersion, reconnectPeriod: 0 });
  const seen: Observed[] = [];
  client.on('message', (topic, payload, packet) => seen.push({ topic, payload: payload.toString(), packet }));
  await client.subscribeAsync(filter, { qos: 1 });
  return { client, seen };
}
