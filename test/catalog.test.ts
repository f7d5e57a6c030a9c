import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'mocha';
import { temporaryDirectory } from './support/node-red-process.js';
import { copyWorkingTree } from './support/working-copy.js';

const run = promisify(execFile);

/** Reads a JSON file of `directory`, changes it with `change`, and writes it back. */
function editJson(
  directory: string,
  file: string,
  change: (json: Record<string, Record<string, unknown>>) => void,
) {
  const json = JSON.parse(readFileSync(path.join(directory, file), 'utf8'));
  change(json['durable-mqtt']);
  writeFileSync(path.join(directory, file), JSON.stringify(json, null, 2));
}

function editText(directory: string, file: string, from: string, to: string) {
  const text = readFileSync(path.join(directory, file), 'utf8');
  assert.ok(text.includes(from), `${file} has ${from}`);
  writeFileSync(path.join(directory, file), text.replace(from, to));
}

describe('the build, on a message catalog that lacks a text the nodes or the dialogs use', () => {
  let work: string;
  let problems: string[] = [];
  let exitCode: number | undefined;

  before(async function () {
    this.timeout(120_000);
    work = temporaryDirectory('durable-mqtt-catalog-');
    const copy = copyWorkingTree(path.join(work, 'source'));
    // A French text a template and a dialog use, gone; a French text whose placeholder was renamed;
    // a dialog asking for a text no catalog has.
    editJson(copy, 'locales/fr/messages.json', (fr) => {
      delete (fr.label as Record<string, unknown>).broker;
      (fr.status as Record<string, unknown>).clients = '__nombre__ client(s)';
    });
    editText(copy, 'nodes/editor/mqtt-out.ts', "t('validation.qos'", "t('validation.no-such-text'");
    try {
      await run(process.execPath, [path.join(copy, 'scripts', 'build.mjs')], { cwd: copy });
    } catch (error) {
      const failed = error as { code?: number; stderr?: string };
      exitCode = failed.code;
      problems = (failed.stderr ?? '').split('\n').map((line) => line.trim());
    }
  });

  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('fails before compiling anything', () => {
    assert.equal(exitCode, 1);
    assert.equal(existsSync(path.join(work, 'source', 'dist')), false);
  });

  it('names the text a language lacks, and the template that uses it', () => {
    assert.ok(problems.includes('fr lacks durable-mqtt.label.broker'), problems.join('\n'));
    assert.ok(
      problems.includes('nodes/mqtt-out.html uses durable-mqtt.label.broker, which the fr catalog lacks'),
      problems.join('\n'),
    );
  });

  it('names a text whose placeholders differ from English', () => {
    assert.ok(
      problems.includes('fr durable-mqtt.status.clients has placeholders (nombre), en-US (count)'),
      problems.join('\n'),
    );
  });

  it('names a text a dialog asks for that no catalog has', () => {
    for (const lang of ['en-US', 'fr'])
      assert.ok(
        problems.includes(
          `nodes/editor/mqtt-out.ts uses durable-mqtt.validation.no-such-text, which the ${lang} catalog lacks`,
        ),
        problems.join('\n'),
      );
  });
});
