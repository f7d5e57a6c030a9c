import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { waitFor } from './wait.js';

/** Process groups started here and not yet seen gone: killed if this test process ends first. */
const liveGroups = new Set<number>();
/** Temporary directories made here: removed if this test process ends before its after() hooks run. */
const temporaryDirectories = new Set<string>();

/** A new directory under the system's temporary directory, removed at the latest when this process ends. */
export function temporaryDirectory(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  temporaryDirectories.add(dir);
  return dir;
}

function killLiveGroups() {
  for (const pgid of liveGroups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  liveGroups.clear();
  for (const dir of temporaryDirectories) rmSync(dir, { recursive: true, force: true });
  temporaryDirectories.clear();
}

// A detached group does not get the terminal's Ctrl-C, nor dies with its parent: an interrupted,
// crashed or timed-out test file must not leave a Node-RED holding its port behind.
process.once('exit', killLiveGroups);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  const onSignal = () => {
    killLiveGroups();
    // Alone on this signal, re-raise it so the process ends as it would have without this listener.
    if (process.listenerCount(signal) === 1) {
      process.off(signal, onSignal);
      process.kill(process.pid, signal);
    }
  };
  process.on(signal, onSignal);
}

/**
 * A Node-RED child process (started directly or through `npm start`) in its
 * own process group, so that stopping it reaches every process it started.
 * Everything it prints is kept in `output` for assertions and failure reports.
 */
export class NodeRedProcess {
  output = '';
  readonly child: ChildProcess;
  /** How the top process exited, once it and everything sharing its output have closed it. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(
    readonly baseUrl: string,
    command: string,
    args: string[],
    options: { cwd: string; env?: NodeJS.ProcessEnv },
  ) {
    this.child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (this.child.pid !== undefined) liveGroups.add(this.child.pid);
    this.child.stdout!.on('data', (chunk) => (this.output += chunk));
    this.child.stderr!.on('data', (chunk) => (this.output += chunk));
    // 'close', not 'exit': it comes once the output pipes are closed, which the processes the top one
    // started (npm → sh → node → Node-RED) share, so every last line is in `output` by then.
    this.exited = new Promise((resolve) =>
      this.child.once('close', (code, signal) => resolve({ code, signal })),
    );
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The output's lines that Node-RED logged at `level` ("error", "warn", …). */
  logLines(level: string): string[] {
    return this.output.split('\n').filter((line) => line.includes(`[${level}]`));
  }

  /** Resolves once GET `path` answers 200; fails early, with the output, if the process exits. */
  async waitUntilServing(path: string, timeoutMs: number): Promise<void> {
    await waitFor(
      async () => {
        if (!this.running) throw new Error(`the process exited before serving ${path}:\n${this.output}`);
        try {
          return (await fetch(this.baseUrl + path)).ok;
        } catch {
          return false;
        }
      },
      `GET ${this.baseUrl}${path}`,
      timeoutMs,
    );
  }

  /** The processes of the group still alive (zombies waiting to be reaped do not count). */
  groupMembers(): string[] {
    const pgid = this.child.pid!;
    return execFileSync('ps', ['-eo', 'pid=,pgid=,stat=,args='], { encoding: 'utf8' })
      .split('\n')
      .map((line) => line.trim().split(/\s+/))
      .filter(([, group, stat]) => Number(group) === pgid && stat !== undefined && !stat.startsWith('Z'))
      .map((fields) => `${fields[0]} ${fields.slice(3).join(' ')}`);
  }

  /** SIGTERM to the whole group; resolves with how the top process exited once no process of the group is left. */
  async stop(timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    try {
      process.kill(-this.child.pid!, 'SIGTERM');
    } catch {
      // The whole group has already exited.
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        const left = this.groupMembers().join(', ') || 'none';
        reject(new Error(`the process group did not exit within ${timeoutMs} ms of SIGTERM (left: ${left})`));
      }, timeoutMs);
    });
    try {
      const exit = await Promise.race([this.exited, timeout]);
      await Promise.race([
        waitFor(() => this.groupMembers().length === 0, 'every process of the group to exit', timeoutMs),
        timeout,
      ]);
      liveGroups.delete(this.child.pid!);
      return exit;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Last-resort cleanup for after(): SIGKILL whatever is left of the group. */
  kill(): void {
    if (!liveGroups.delete(this.child.pid!)) return;
    try {
      process.kill(-this.child.pid!, 'SIGKILL');
    } catch {
      // The group is already gone.
    }
  }
}

export interface NodeStatusMessage {
  text?: string;
  fill?: string;
  shape?: string;
}

/** What the debug sidebar receives: a debug node's output, or a warning/error a node logged. */
export interface DebugMessage {
  id: string;
  name?: string;
  topic?: string;
  /** Node-RED's encoding of the value (RED.util.encodeObject): a JSON string for objects. */
  msg: unknown;
  format?: string;
  /** Set (20 error, 30 warn) when the entry is a node's log message rather than debug node output. */
  level?: number;
  type?: string;
}

/**
 * The editor's view of the runtime: a WebSocket on /comms subscribed to topics
 * as the editor subscribes ("debug", "status/#", …), keeping every message.
 */
export class CommsObserver {
  readonly messages: { topic: string; data: unknown }[] = [];

  private constructor(private readonly socket: WebSocket) {
    socket.on('message', (frame) => {
      // The runtime batches messages into JSON arrays; heartbeats come alone.
      const parsed: unknown = JSON.parse(frame.toString());
      for (const entry of Array.isArray(parsed) ? parsed : [parsed]) {
        if (entry && typeof entry === 'object' && typeof entry.topic === 'string') this.messages.push(entry);
      }
    });
  }

  /** Opens /comms and subscribes to `topics` (no adminAuth: no auth message is needed). */
  static async open(baseUrl: string, topics: string[]): Promise<CommsObserver> {
    const socket = new WebSocket(baseUrl.replace(/^http/, 'ws') + '/comms');
    await new Promise<void>((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    const observer = new CommsObserver(socket);
    for (const topic of topics) socket.send(JSON.stringify({ subscribe: topic }));
    return observer;
  }

  /** Every status a node showed, oldest first (statuses are retained: the current one comes on subscribing). */
  statusesOf(id: string): NodeStatusMessage[] {
    return this.messages.filter((m) => m.topic === `status/${id}`).map((m) => m.data as NodeStatusMessage);
  }

  /** Waits until node `id` shows a status matching `accept`, and returns it. */
  async waitForStatus(
    id: string,
    accept: (status: NodeStatusMessage) => boolean,
    what: string,
    timeoutMs: number,
  ): Promise<NodeStatusMessage> {
    try {
      await waitFor(() => this.statusesOf(id).some(accept), what, timeoutMs);
    } catch (error) {
      const seen = JSON.stringify(this.statusesOf(id));
      throw new Error(`${(error as Error).message}; statuses of ${id} seen: ${seen}`, { cause: error });
    }
    return this.statusesOf(id).find(accept)!;
  }

  debugMessages(): DebugMessage[] {
    return this.messages.filter((m) => m.topic === 'debug').map((m) => m.data as DebugMessage);
  }

  close(): void {
    this.socket.terminate();
  }
}
