import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Route } from 'playwright-core';
import { verifyPassword } from '../nodes/lib/broker/passwords.js';
import { Editor } from './support/editor.js';
import { newUserDirectory, repositoryNodeRed, startNodeRed } from './support/node-red-install.js';
import { NodeRedProcess, temporaryDirectory } from './support/node-red-process.js';
import { findBinary, skipUnlessInstalled } from './support/services.js';
import { showingOutputOnFailure } from './support/failure-output.js';

const root = path.resolve(__dirname, '..');
const MODULE = 'node-red-contrib-durable-mqtt';
const chromiumBinary = findBinary(['/usr/bin/chromium']);
const BROKER = 'e0e0c0ffee000001';

/** The flows the editor opens with: a tab and an embedded broker on it, without a TCP listener. */
const FLOWS = [
  { id: 'e0e0c0ffee000000', type: 'tab', label: 'editor against the runtime' },
  {
    id: BROKER,
    type: 'durable-mqtt-embedded-broker',
    z: 'e0e0c0ffee000000',
    name: 'users',
    port: '0',
    x: 200,
    y: 100,
    wires: [],
  },
];

describe(
  'the editor in Chromium against the runtime',
  { skip: skipUnlessInstalled('chromium', chromiumBinary) },
  () => {
    let userDir: string;
    let nodeRed: NodeRedProcess | undefined;
    let browser: Browser | undefined;
    let editor: Editor;
    const showingOutput = showingOutputOnFailure(
      () => `--- Node-RED output ---\n${nodeRed?.output ?? ''}\n---`,
      async () => {
        if (editor) console.error(`the page at the failure: ${await editor.screenshot('failure')}`);
      },
    );

    before(
      async () => {
        const screenshots = mkdtempSync(path.join(os.tmpdir(), 'durable-mqtt-editor-runtime-screenshots-'));
        console.log(`# screenshots of the editor: ${screenshots}`);
        userDir = newUserDirectory(temporaryDirectory('durable-mqtt-editor-runtime-'), {
          [MODULE]: `file:${root}`,
        });
        symlinkSync(root, path.join(userDir, 'node_modules', MODULE), 'dir');
        writeFileSync(path.join(userDir, 'flows.json'), JSON.stringify(FLOWS));
        nodeRed = await startNodeRed(repositoryNodeRed(), userDir);
        browser = await chromium.launch({ executablePath: chromiumBinary, args: ['--no-sandbox'] });
        editor = await Editor.open(browser, nodeRed.baseUrl, screenshots);
      },
      { timeout: 120_000 },
    );

    after(async () => {
      await browser?.close();
      nodeRed?.kill();
      if (userDir) rmSync(userDir, { recursive: true, force: true });
    });

    describe('the embedded broker dialog saves the hash of the password typed, never the password', () => {
      /** The password hashes the runtime holds for the broker, by user name. */
      async function storedHashes(): Promise<Record<string, string>> {
        const response = await fetch(
          `${nodeRed!.baseUrl}/credentials/durable-mqtt-embedded-broker/${BROKER}`,
        );
        assert.equal(response.status, 200);
        const credentials: { passwords?: string } = await response.json();
        return JSON.parse(credentials.passwords ?? '{}');
      }

      /**
       * Runs `step` with the runtime's password hashes taking half a second to come, so that the
       * dialog is closed while the hash of what was typed is still on its way.
       */
      async function withSlowHashes(step: () => Promise<void>): Promise<void> {
        const url = '**/durable-mqtt-embedded-broker/password-hash';
        const slow = async (route: Route) => {
          await new Promise((resolve) => setTimeout(resolve, 500));
          await route.continue();
        };
        await editor.page.route(url, slow);
        try {
          await step();
        } finally {
          await editor.page.unroute(url, slow);
        }
      }

      /** Opens the broker's dialog on its Security tab and types a password into the user row `index`. */
      async function typePassword(index: number, password: string): Promise<void> {
        await editor.editNode(BROKER);
        await editor.page.click('a[href="#durable-mqtt-embedded-tab-security"]');
        await editor.page.locator('.durable-mqtt-user-password').nth(index).fill(password);
      }

      it('stores the hash of a new user’s password when Done is clicked before the hash has come', () =>
        showingOutput(async () => {
          const page = editor.page;
          await editor.editNode(BROKER);
          await page.click('a[href="#durable-mqtt-embedded-tab-security"]');
          await page.click('#durable-mqtt-embedded-tab-security .red-ui-editableList-addButton');
          await page.locator('.durable-mqtt-user-name').last().fill('alice');
          await withSlowHashes(async () => {
            await page.locator('.durable-mqtt-user-password').last().fill('first secret');
            await editor.closeDialog();
          });
          await editor.deploy();
          const hashes = await storedHashes();
          assert.deepEqual(Object.keys(hashes), ['alice']);
          assert.ok(await verifyPassword('first secret', hashes.alice), 'the hash of the password typed');
          const stored = readFileSync(path.join(userDir, 'flows_cred.json'), 'utf8');
          assert.ok(!stored.includes('first secret'), 'no plain password in the credentials file');
        }));

      it('stores the hash of a changed password when Ctrl+Enter closes the dialog before the hash has come', () =>
        showingOutput(async () => {
          await withSlowHashes(async () => {
            await typePassword(0, 'second secret');
            await editor.page.keyboard.press('Control+Enter');
            await editor.page.locator('#node-dialog-ok').waitFor({ state: 'detached' });
          });
          await editor.deploy();
          const hashes = await storedHashes();
          assert.ok(await verifyPassword('second secret', hashes.alice), 'the hash of the new password');
          assert.equal(await verifyPassword('first secret', hashes.alice), false, 'not the old one');
        }));

      it('keeps the stored hash when the password field is left empty', () =>
        showingOutput(async () => {
          const before = await storedHashes();
          await editor.editNode(BROKER);
          await editor.page.click('a[href="#durable-mqtt-embedded-tab-security"]');
          await editor.typeInto('#node-input-name', 'users, renamed');
          await editor.closeDialog();
          await editor.deploy();
          assert.deepEqual(await storedHashes(), before);
        }));
    });
  },
);
