/**
 * A Mosquitto the bench starts on a free loopback port, to compare the embedded broker with, and
 * what the kernel says about a process (RSS, CPU time, the open-files limit), Mosquitto's or ours.
 */
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { mosquittoBinary, readableTempDir } from '../test/support/mosquitto.js';
import { freePort } from '../test/support/ports.js';
import { delay } from '../test/support/wait.js';

export interface BenchMosquitto {
  port: number;
  pid: number;
  version: string;
  stop(): Promise<void>;
}

/**
 * Mosquitto with anonymous clients, no persistence, no bound on connections or on QoS 1 and 2
 * messages in flight per client, and its warnings and errors on this process's stderr.
 */
export async function startMosquitto(): Promise<BenchMosquitto> {
  if (!mosquittoBinary) throw new Error("mosquitto is not installed: run 'apt-get install -y mosquitto'");
  const dir = readableTempDir('durable-mqtt-bench-mosquitto-');
  const port = await freePort();
  const configFile = path.join(dir, 'mosquitto.conf');
  writeFileSync(
    configFile,
    [
      'per_listener_settings false',
      'persistence false',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'allow_anonymous true',
      'max_inflight_messages 0',
      // No bound on a client's queue either: a burst the window allows is never dropped.
      'max_queued_messages 0',
      `listener ${port} 127.0.0.1`,
      'max_connections -1',
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(mosquittoBinary, ['-c', configFile], {
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  let output = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    process.stderr.write(chunk);
  });
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited: ${output}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) break;
    if (Date.now() > deadline) throw new Error(`mosquitto did not listen on ${port}: ${output}`);
    await delay(50);
  }
  const version = /mosquitto version (\S+)/.exec(
    await new Promise<string>((resolve) => {
      let text = '';
      const help = spawn(mosquittoBinary as string, ['-h'], { stdio: ['ignore', 'pipe', 'ignore'] });
      help.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
      help.on('close', () => resolve(text));
    }),
  )?.[1];
  // The driver stops a worker past its time with SIGTERM: its Mosquitto must not outlive it.
  const orphaned = () => child.kill('SIGKILL');
  process.once('SIGTERM', () => {
    orphaned();
    process.exit(1);
  });
  return {
    port,
    pid: child.pid as number,
    version: version ?? '?',
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The resident set (VmRSS) of process `pid`, in bytes. */
export function rssOf(pid: number | 'self'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kB = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  if (kB === undefined) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(kB) * 1024;
}

/** Clock ticks a second in /proc/<pid>/stat: USER_HZ, 100 on Linux for every architecture Node.js runs on. */
const TICKS_PER_SECOND = 100;

/** User + system CPU time of process `pid` so far, in seconds. */
export function cpuSecondsOf(pid: number | 'self'): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces: utime and stime are 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** This process's soft limit on open files (ulimit -n), which its children inherit. */
export function openFilesLimit(): number {
  const limits = readFileSync('/proc/self/limits', 'utf8');
  const soft = /^Max open files\s+(\S+)/m.exec(limits)?.[1];
  return soft === undefined || soft === 'unlimited' ? Number.POSITIVE_INFINITY : Number(soft);
}
