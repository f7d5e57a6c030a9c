import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'mocha';

const root = path.resolve(__dirname, '..');

describe('the diagrams in docs/', () => {
  it('are what scripts/diagrams.mjs draws from their descriptions (npm run docs redraws them)', () => {
    const check = spawnSync(process.execPath, [path.join(root, 'scripts', 'diagrams.mjs'), '--check'], {
      encoding: 'utf8',
    });
    assert.equal(check.status, 0, check.stderr);
  });

  it('has the end-to-end sequence diagram as an SVG the README shows, naming every step', () => {
    const svg = readFileSync(path.join(root, 'docs', 'end-to-end.svg'), 'utf8');
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    for (const step of [
      'PUBLISH (id, reply address)',
      'PUBACK',
      'receipt PUBLISH',
      'PUBLISH again (same id)',
    ])
      assert.ok(svg.includes(step), step);
    const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
    assert.match(readme, /!\[[^\]]+\]\(docs\/end-to-end\.svg\)/);
  });
});
