import { execFileSync } from 'node:child_process';
import type { Context } from 'mocha';

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
 * Skips what `context` runs (a suite, from its first `before` hook; or a test) when a Debian service
 * is missing. Under CI a missing service is a broken machine: nothing is skipped, the tests run and
 * fail. Elsewhere the skip comes with a loud message naming the package to install.
 */
export function skipUnlessInstalled(
  context: Context,
  debianPackage: string,
  binary: string | undefined,
): void {
  if (binary) return;
  skipOutsideCi(
    context,
    `${debianPackage} is not installed: run 'apt-get install -y ${debianPackage}' to run these tests`,
  );
}

/** Skips what `context` runs with a loud message saying what is `missing`; under CI, nothing is skipped. */
export function skipOutsideCi(context: Context, missing: string): void {
  if (process.env.CI) return;
  console.warn(`\n!!! SKIPPED: ${missing}\n`);
  context.skip();
}

/**
 * The first of `interpreters` that imports the Python module `module`, or undefined. Debian's
 * python3-… packages install for /usr/bin/python3, which a python3 earlier on the PATH (pyenv, a
 * virtualenv) does not see: it comes first.
 */
export function findPythonWith(
  module: string,
  interpreters = ['/usr/bin/python3', 'python3'],
): string | undefined {
  for (const interpreter of interpreters) {
    try {
      execFileSync(interpreter, ['-c', `import ${module}`], { stdio: 'ignore' });
      return interpreter;
    } catch {
      // Not there, or without the module: the next one.
    }
  }
  return undefined;
}
