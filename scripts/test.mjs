// Runs the test files under test/ with mocha (.mocharc.json: TypeScript through tsx, two files at a
// time) under c8, which prints the coverage summary (.c8rc.json); the pass/fail counts come last.
// Arguments narrow the run: `npm test -- mqtt-in` runs files whose name contains "mqtt-in".
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stripVTControlCharacters } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const filters = process.argv.slice(2);
const files = readdirSync(path.join(root, 'test'))
  .filter((name) => name.endsWith('.test.ts'))
  .filter((name) => filters.length === 0 || filters.some((filter) => name.includes(filter)))
  .sort()
  .map((name) => path.join('test', name));
if (files.length === 0) {
  console.error(`no test file matches ${filters.join(' ')}`);
  process.exit(1);
}

// Every process of the run writes its V8 coverage here, spawned Node-RED processes included.
const coverageFiles = mkdtempSync(path.join(os.tmpdir(), 'durable-mqtt-coverage-'));
const run = spawn(
  process.execPath,
  [
    require.resolve('c8/bin/c8.js'),
    `--temp-directory=${coverageFiles}`,
    process.execPath,
    require.resolve('mocha/bin/mocha.js'),
    ...(process.stdout.isTTY ? ['--color'] : []),
    ...files,
  ],
  { cwd: root, stdio: ['inherit', 'pipe', 'inherit'] },
);
// Passed through as it comes, and kept for mocha's counts ("205 passing (4m)", "1 failing", "2 pending").
let output = '';
run.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  output += chunk;
});
run.on('close', (code, signal) => {
  rmSync(coverageFiles, { recursive: true, force: true });
  const plain = stripVTControlCharacters(output);
  // Mocha says "205 passing (4m)", "1 failing", "2 pending"; the last line says them in the plain form
  // "tests: N passed, N failed, N skipped" that CI logs and readers take in at a glance.
  const count = (word) => Number(plain.match(new RegExp(`^ {2}(\\d+) ${word}\\b`, 'm'))?.[1] ?? 0);
  console.log(`\ntests: ${count('passing')} passed, ${count('failing')} failed, ${count('pending')} skipped`);
  process.exit(code ?? (signal ? 1 : 0));
});
