import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { findBinary } from './services.js';
import { freePort, isListening } from './ports.js';
import { temporaryDirectory } from './node-red-process.js';
import { delay } from './wait.js';

export const redisBinary = findBinary(['/usr/bin/redis-server', 'redis-server']);

/** A private redis-server on a free loopback port, in its own directory, keeping nothing on disk. */
export class RedisServer {
  readonly dir = temporaryDirectory('durable-mqtt-redis-');
  port = 0;
  output = '';
  private process: ChildProcess | undefined;

  constructor(private readonly options: { password?: string } = {}) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}/0`;
  }

  async start(): Promise<void> {
    if (!redisBinary) throw new Error("redis-server is not installed: run 'apt-get install -y redis-server'");
    if (!this.port) this.port = await freePort();
    // Options on the command line, no config file: the system's /etc/redis is never read.
    const args = [
      '--port',
      String(this.port),
      '--bind',
      '127.0.0.1',
      '--dir',
      this.dir,
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'no',
      ...(this.options.password ? ['--requirepass', this.options.password] : []),
    ];
    const child = spawn(redisBinary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.process = child;
    child.stdout!.on('data', (chunk) => (this.output += chunk));
    child.stderr!.on('data', (chunk) => (this.output += chunk));
    const deadline = Date.now() + 10_000;
    while (!(await isListening(this.port))) {
      if (child.exitCode !== null) throw new Error(`redis-server exited: ${this.output}`);
      if (Date.now() > deadline)
        throw new Error(`redis-server did not listen on ${this.port}: ${this.output}`);
      await delay(50);
    }
  }

  /** SIGKILL: Redis goes away as in a crash (it keeps nothing: it comes back empty). */
  async stop(): Promise<void> {
    const child = this.process;
    this.process = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  /** Stops it and removes its directory. */
  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
