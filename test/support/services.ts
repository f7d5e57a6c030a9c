import { execFileSync } from 'node:child_process';

/** The first of `candidates` that runs, or undefined when the service is not installed. */
export function findBinary(candidates: string[]): string | undefined {
  for (const candidate of candidates) {
    try {
      execFileSync(candidate, ['-h'], { stdio: 'ignore' });
      return candidate;
    } catch (error) {
      // Some daemons (mosquitto) exit non-zero after printing their help: the binary is there.
      if ((error as { code?: string }).code !== 'ENOENT') return candidate;
    }
  }
  return undefined;
}

/**
 * The `skip` option for a suite that needs a Debian service. Under CI a missing
 * service is a broken machine: the suite runs and fails. Elsewhere it is
 * skipped with a loud message naming the package to install.
 */
export function skipUnlessInstalled(debianPackage: string, binary: string | undefined): string | false {
  if (binary || process.env.CI) return false;
  const message = `${debianPackage} is not installed: run 'apt-get install -y ${debianPackage}' to run these tests`;
  console.warn(`\n!!! SKIPPED: ${message}\n`);
  return message;
}
