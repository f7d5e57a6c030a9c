import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { findPythonWith } from './services.js';
import { waitFor } from './wait.js';

/** The Python that has Debian's python3-paho-mqtt, or undefined when it is not installed. */
export const pahoPython: string | undefined = findPythonWith('paho.mqtt.client');

const SCRIPT = path.join(__dirname, 'paho-client.py');

/** What test/support/paho-client.py prints, one JSON object a line. */
export interface PahoEvent {
  event:
    'connack' | 'subscribing' | 'suback' | 'publishing' | 'published' | 'message' | 'disconnected' | 'error';
  [field: string]: unknown;
}

export interface PahoMessage extends PahoEvent {
  topic: string;
  payload: string;
  qos: number;
  retain: boolean;
}

export interface PahoConnect {
  clientId: string;
  cleanStart?: boolean;
  sessionExpiry?: number;
  will?: { topic: string; payload: string; qos: 0 | 1 | 2; retain: boolean };
}

export interface PahoSubscribe {
  topic: string;
  qos?: 0 | 1 | 2;
  noLocal?: boolean;
  retainAsPublished?: boolean;
  retainHandling?: 0 | 1 | 2;
}

/**
 * An Eclipse Paho MQTT 5 client in a Python process of its own (test/support/paho-client.py),
 * commanded through its stdin; each step waits for what the broker answered.
 */
export class PahoClient {
  readonly events: PahoEvent[] = [];
  private readonly child: ChildProcess;
  private stderr = '';
  private pending = '';

  constructor(private readonly port: number) {
    if (!pahoPython) throw new Error('python3-paho-mqtt is not installed');
    this.child = spawn(pahoPython, [SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (chunk: Buffer) => {
      this.pending += chunk.toString();
      const lines = this.pending.split('\n');
      this.pending = lines.pop()!;
      for (const line of lines) if (line.trim()) this.events.push(JSON.parse(line));
    });
    this.child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    // A broken pipe after a kill is expected; the steps report a missing answer themselves.
    this.child.stdin!.on('error', () => {});
  }

  /** What the process printed, for failure messages. */
  get transcript(): string {
    return (
      this.events.map((e) => JSON.stringify(e)).join('\n') + (this.stderr ? `\nstderr:\n${this.stderr}` : '')
    );
  }

  /** The first event from index `from` on that `accept` takes; fails on an "error" event. */
  async next<E extends PahoEvent>(accept: (event: PahoEvent) => boolean, what: string, from = 0): Promise<E> {
    const found = () => {
      const failure = this.events.find((e) => e.event === 'error');
      if (failure) throw new Error(`paho: ${String(failure.message)}\n${this.transcript}`);
      return this.events.slice(from).find(accept);
    };
    try {
      await waitFor(() => found() !== undefined, what, 10_000);
    } catch (error) {
      throw new Error(`${(error as Error).message}; paho printed:\n${this.transcript}`, { cause: error });
    }
    return found() as E;
  }

  private send(command: Record<string, unknown>): number {
    const from = this.events.length;
    this.child.stdin!.write(JSON.stringify(command) + '\n');
    return from;
  }

  /** Connects and returns the CONNACK as paho reports it. */
  connect(options: PahoConnect): Promise<PahoEvent> {
    const from = this.send({ do: 'connect', port: this.port, ...options });
    return this.next((e) => e.event === 'connack', 'the CONNACK', from);
  }

  /** Subscribes and returns the SUBACK's reason codes as paho reports them. */
  async subscribe(options: PahoSubscribe): Promise<{ value: number; reason: string }[]> {
    const from = this.send({ do: 'subscribe', ...options });
    const { mid } = await this.next(
      (e) => e.event === 'subscribing',
      `subscribing to ${options.topic}`,
      from,
    );
    const suback = await this.next(
      (e) => e.event === 'suback' && e.mid === mid,
      `the SUBACK for ${options.topic}`,
      from,
    );
    return suback.reasonCodes as { value: number; reason: string }[];
  }

  /** Publishes; resolves once sent (QoS 0) or acknowledged (QoS 1 and 2). */
  async publish(
    topic: string,
    payload: string,
    options: { qos?: 0 | 1 | 2; retain?: boolean } = {},
  ): Promise<void> {
    const from = this.send({ do: 'publish', topic, payload, ...options });
    const { mid } = await this.next((e) => e.event === 'publishing', `publishing on ${topic}`, from);
    await this.next((e) => e.event === 'published' && e.mid === mid, `the publication on ${topic}`, from);
  }

  /** Leaves with a DISCONNECT packet. */
  async disconnect(): Promise<void> {
    const from = this.send({ do: 'disconnect' });
    await this.next((e) => e.event === 'disconnected', 'the disconnection', from);
    await this.close();
  }

  messages(topic?: string): PahoMessage[] {
    return this.events.filter(
      (e): e is PahoMessage => e.event === 'message' && (topic === undefined || e.topic === topic),
    );
  }

  /** The first message on `topic` that `accept` takes (all by default), waiting for it. */
  message(topic: string, accept: (m: PahoMessage) => boolean = () => true): Promise<PahoMessage> {
    return this.next<PahoMessage>(
      (e) => e.event === 'message' && e.topic === topic && accept(e as PahoMessage),
      `a message on ${topic}`,
    );
  }

  /** SIGKILL, as a crash or a pulled cable would end it: no DISCONNECT goes out. */
  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGKILL');
    await exited;
  }

  /** Ends the process (stdin closed, then SIGKILL if it lingers). */
  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 3_000);
    await exited;
    clearTimeout(timer);
  }
}
