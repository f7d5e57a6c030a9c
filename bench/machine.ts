/** The machine, the versions and the commit a run measured, for the head of the report. */
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Machine } from './report.js';

function versionOf(root: string, packageJson: string): string {
  try {
    return (
      JSON.parse(readFileSync(path.join(root, 'node_modules', packageJson), 'utf8')) as { version: string }
    ).version;
  } catch {
    return '?';
  }
}

function revision(root: string): string {
  try {
    const git = (...args: string[]) =>
      execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = git('status', '--porcelain', '--', 'nodes', 'package-lock.json') !== '';
    return `${git('rev-parse', '--short', 'HEAD')}${dirty ? ' + uncommitted changes' : ''}`;
  } catch {
    return 'unknown revision';
  }
}

/** This machine, and the versions installed in the package at `root`. */
export function machine(root: string): Machine {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown CPU',
    cores: cpus.length,
    memoryGB: Math.round(os.totalmem() / 1024 ** 3),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    nodeRed: versionOf(root, 'node-red/package.json'),
    aedes: versionOf(root, 'aedes/package.json'),
    mqttOurs: versionOf(root, 'mqtt/package.json'),
    mqttCore: (() => {
      const nested = versionOf(root, '@node-red/nodes/node_modules/mqtt/package.json');
      return nested === '?' ? versionOf(root, 'mqtt/package.json') : nested;
    })(),
    revision: revision(root),
  };
}
