import { execFileSync } from 'node:child_process';
import type { TestContext } from 'node:test';

/** Path of a Debian service binary, or undefined when it is not installed. */
export function findBinary(name: string, candidates: string[]): string | undefined {
  for (const candidate of candidates) {
    try {
      execFileSync(candidate, ['-h'], { stdio: 'ignore' });
      return candidate;
    } catch (error) {
      // mosquitto -h exits 3 after printing its help: the binary is there.
      if ((error as { status?: number }).status !== undefined && (error as { code?: string }).code !== 'ENOENT') return candidate;
    }
  }
  return undefined;
}

/**
 * The binary, or: under CI a failure (a missing service is a broken CI machine),
 * elsewhere a loud skip naming the Debian package to install.
 */
export function requireService(t: TestContext, debianPackage: string, binary: string | undefined): binary is string {
  if (binary) return true;
  const message = `${debianPackage} is not installed: run 'apt-get install -y ${debianPackage}' to run this test`;
  if (process.env.CI) throw new Error(message);
  console.warn(`\n!!! SKIPPED: ${message}\n`);
  t.skip(message);
  return false;
}
