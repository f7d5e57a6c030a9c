import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import { ThrottledReport } from '../nodes/lib/broker/throttled-report.js';
import { delay } from './support/wait.js';

describe('ThrottledReport', () => {
  it('reports the first event at once, the next ones of the interval together, and what is left on close', async () => {
    const reports: [number, string][] = [];
    const report = new ThrottledReport<string>(150, (count, last) => reports.push([count, last]));
    report.add('a');
    assert.deepEqual(reports, [[1, 'a']]);
    for (const sample of ['b', 'c', 'd']) report.add(sample);
    assert.equal(reports.length, 1, 'nothing more within the interval');
    await delay(250);
    assert.deepEqual(reports, [
      [1, 'a'],
      [3, 'd'],
    ]);
    report.add('e');
    report.close();
    assert.deepEqual(reports.at(-1), [1, 'e']);
    report.close();
    assert.equal(reports.length, 3, 'closing with nothing pending reports nothing');
  });
});
