// A process that counts one delivery of a key in a LevelDB store and SIGKILLs itself as soon as
// `begin` resolves, as a flow that kills Node-RED would. Run by test/quarantine.test.ts:
//   node --import tsx delivery-crash-child.ts <dir> <key> <maxDeliveries> [error text to record first]
// It prints the verdict as one line of JSON on stdout before it dies.
import { writeSync } from 'node:fs';
import { DeliveryCounts } from '../../nodes/lib/quarantine/delivery-counts.js';
import { LevelDeliveryStore } from '../../nodes/lib/quarantine/level-delivery-store.js';

const [dir, key, maxDeliveries, errorText] = process.argv.slice(2);

async function main(): Promise<void> {
  const counts = await DeliveryCounts.open(new LevelDeliveryStore(dir), {
    maxDeliveries: Number(maxDeliveries),
  });
  const verdict = await counts.begin(key);
  // Synchronous: an asynchronous write to a pipe may not leave before the kill.
  writeSync(1, `${JSON.stringify(verdict)}\n`);
  if (verdict.kind === 'deliver' && errorText !== undefined) {
    // The flow ended in an error before the crash: the error goes with the next write, which is awaited.
    counts.failed(key, errorText);
    await counts.committed();
  }
  process.kill(process.pid, 'SIGKILL');
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
