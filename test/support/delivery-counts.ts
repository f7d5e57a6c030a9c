import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import type { DeliveryVerdict } from '../../nodes/lib/quarantine/delivery-counts.js';
import type { DeliveryEntry, DeliveryStoreWrite } from '../../nodes/lib/quarantine/delivery-store.js';
import { MemoryKeyedStore } from '../../nodes/lib/keyed-store.js';

/** A memory store that keeps every write it is given and fails them while `failure` is set. */
export class WatchedStore extends MemoryKeyedStore<DeliveryEntry> {
  readonly writes: DeliveryStoreWrite[] = [];
  failure: Error | undefined;

  override async write(change: DeliveryStoreWrite): Promise<void> {
    this.writes.push(change);
    if (this.failure) throw this.failure;
    return super.write(change);
  }
}

/** A memory store whose writes wait until `release` is called. */
export class HeldStore extends MemoryKeyedStore<DeliveryEntry> {
  readonly release: () => void;
  private readonly held: Promise<void>;

  constructor() {
    super();
    let release!: () => void;
    this.held = new Promise((resolve) => (release = resolve));
    this.release = release;
  }

  override async write(change: DeliveryStoreWrite): Promise<void> {
    await this.held;
    return super.write(change);
  }
}

/** Lets `count` event-loop turns go by. */
export const turns = async (count: number) => {
  for (let i = 0; i < count; i++) await new Promise((resolve) => setImmediate(resolve));
};

/** Runs test/support/delivery-crash-child.ts: one `begin` on the LevelDB store in `dir`, then SIGKILL. */
export async function crashingDelivery(dir: string, key: string, maxDeliveries: number, errorText?: string) {
  const script = path.join(__dirname, 'delivery-crash-child.ts');
  const args = ['--import', 'tsx', script, dir, key, String(maxDeliveries)];
  if (errorText !== undefined) args.push(errorText);
  const child = spawn(process.execPath, args, {
    cwd: path.resolve(__dirname, '..', '..'),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const signal = await new Promise<NodeJS.Signals | null>((resolve) =>
    child.on('close', (_code, signal) => resolve(signal)),
  );
  assert.equal(signal, 'SIGKILL', `the child was not killed: ${stderr}`);
  return JSON.parse(stdout) as DeliveryVerdict;
}
