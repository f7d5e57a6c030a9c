import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'mocha';
import { chromium, type Browser } from 'playwright-core';
import { Editor, showingNodeRedAndEditor } from './support/editor.js';
import { englishCatalog } from './support/hello-world.js';
import { repositoryNodeRed, startNodeRed } from './support/node-red-install.js';
import { linkedUserDirectory } from './support/user-directory.js';
import { CommsObserver, NodeRedProcess, temporaryDirectory } from './support/node-red-process.js';
import { freePort } from './support/ports.js';
import { findBinary, skipUnlessInstalled } from './support/services.js';
import { waitFor } from './support/wait.js';

/**
 * Every node type of the package, each of which the palette must offer. The
 * suite checks this list against package.json, so a new node type fails it until
 * it is added here.
 */
const PALETTE_TYPES = [
  'durable-mqtt-broker-config',
  'durable-mqtt-dedupe',
  'durable-mqtt-embedded-broker',
  'durable-mqtt-in',
  'durable-mqtt-out',
];

const root = path.resolve(__dirname, '..');
const MODULE = 'node-red-contrib-durable-mqtt';
const packageJson = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const EXAMPLES = readdirSync(path.join(root, 'examples'))
  .filter((name) => name.endsWith('.json'))
  .map((name) => path.basename(name, '.json'))
  .sort();
const frenchCatalog = JSON.parse(readFileSync(path.join(root, 'locales', 'fr', 'messages.json'), 'utf8'))[
  'durable-mqtt'
];
/** The embedded broker's error when something else (a developer's Mosquitto…) holds 1883. */
const PORT_IN_USE: string = englishCatalog.errors['port-in-use']
  .replace('__port__', '1883')
  .replace('__bind__', '127.0.0.1');

const chromiumBinary = findBinary(['/usr/bin/chromium']);
/** Where the screenshots the README shows go, rewritten by each run. */
const DOCS = path.join(root, 'docs');
/** The widest an in or out node's canvas label may be, in pixels, so that it does not run into its neighbours. */
const MAX_LABEL_WIDTH = 200;

/** The nodes of an example's flow file. */
function exampleNodes(example: string): { id: string; type: string; [property: string]: unknown }[] {
  return JSON.parse(readFileSync(path.join(root, 'examples', `${example}.json`), 'utf8'));
}

/** The id of the first node of `type` in an example. */
function exampleNode(example: string, type: string): string {
  return exampleNodes(example).find((node) => node.type === type)!.id;
}

describe('the editor in Chromium: palette, dialogs, deploy, examples and French', () => {
  let userDir: string;
  let nodeRed: NodeRedProcess | undefined;
  let comms: CommsObserver | undefined;
  let browser: Browser | undefined;
  let editor: Editor;
  /** Nodes the tests build on the canvas through the palette and the dialogs. */
  const built = { broker: '', inject: '', out: '', in: '', debug: '', config: '', receipts: '' };
  /** Runs a test step; on a failure shows the page as it was, and on the first one Node-RED's output. */
  const showingOutput = showingNodeRedAndEditor(
    () => nodeRed,
    () => editor,
  );

  before(function () {
    skipUnlessInstalled(this, 'chromium', chromiumBinary);
  });

  before(async function () {
    this.timeout(120_000);
    // Kept after the run for a person to look at; a folder per run, so that runs side by side keep theirs.
    const screenshots = mkdtempSync(path.join(os.tmpdir(), 'durable-mqtt-editor-screenshots-'));
    console.log(`# screenshots of the editor: ${screenshots}`);
    // The package from this working tree (its dist/), linked as `npm install <folder>` would.
    userDir = linkedUserDirectory(temporaryDirectory('durable-mqtt-editor-'));
    nodeRed = await startNodeRed(repositoryNodeRed(), userDir);
    comms = await CommsObserver.open(nodeRed.baseUrl, ['debug', 'status/#']);
    browser = await chromium.launch({ executablePath: chromiumBinary, args: ['--no-sandbox'] });
    editor = await Editor.open(browser, nodeRed.baseUrl, screenshots);
  });

  after(async () => {
    await browser?.close();
    comms?.close();
    nodeRed?.kill();
    if (userDir) rmSync(userDir, { recursive: true, force: true });
  });

  it('offers every node type of the package in the "durable mqtt" palette category, with its own icon, apart from the core mqtt nodes', () =>
    showingOutput(async () => {
      assert.deepEqual([...PALETTE_TYPES].sort(), Object.keys(packageJson['node-red'].nodes).sort());
      const page = editor.page;
      for (const type of PALETTE_TYPES) {
        const category = await editor.categoryOf(type);
        if (category === 'config') continue; // config nodes are offered in the dialogs that use them
        assert.equal(category, 'durable mqtt', `${type} category`);
        const entry = page.locator(
          `#red-ui-palette-durable_mqtt .red-ui-palette-node[data-palette-type="${type}"]`,
        );
        await entry.scrollIntoViewIfNeeded();
        assert.ok(await entry.isVisible(), `${type} in the durable mqtt category`);
        const icon = await entry
          .locator('.red-ui-palette-icon')
          .evaluate((e) => getComputedStyle(e).backgroundImage);
        assert.match(icon, new RegExp(`icons/${MODULE}/[\\w-]+\\.svg`), `${type} has an icon of the package`);
      }
      assert.equal(await editor.categoryOf('durable-mqtt-broker-config'), 'config');
      // The core nodes stay where they are, under other labels.
      for (const core of ['mqtt in', 'mqtt out']) {
        assert.equal(
          await page.locator(`#red-ui-palette-durable_mqtt [data-palette-type="${core}"]`).count(),
          0,
        );
        assert.equal(await page.locator(`#red-ui-palette-network [data-palette-type="${core}"]`).count(), 1);
      }
      const labels = await page
        .locator('#red-ui-palette-durable_mqtt .red-ui-palette-label')
        .allTextContents();
      for (const label of labels) assert.doesNotMatch(label.trim(), /^mqtt (in|out)$/);
      await editor.screenshot('palette', page.locator('#red-ui-palette'));
    }));

  it('drags an embedded broker, mqtt out and mqtt in onto the canvas and configures them in their dialogs, picking the embedded broker', () =>
    showingOutput(async () => {
      const page = editor.page;
      built.broker = await editor.dragFromPalette('durable-mqtt-embedded-broker', 260, 60);
      await editor.editNode(built.broker);
      // No TCP listener: the flow needs none, and 1883 may be taken on this machine.
      await editor.typeInto('#node-input-port', '0');
      await editor.typeInto('#node-input-name', 'editor broker');
      await editor.screenshot('embedded-broker-dialog');
      await editor.closeDialog();

      built.inject = await editor.dragFromPalette('inject', 260, 160);
      // A fixed text rather than the inject's timestamp, so docs/flow.png is the same from run to run.
      await editor.setProperties(built.inject, { payload: 'hello', payloadType: 'str' });
      built.out = await editor.dragFromPalette('durable-mqtt-out', 520, 160);
      await editor.editNode(built.out);
      // A new broker config, from the out node's dialog, on the embedded broker chosen in the list.
      await editor.openConfigDialog('broker', 'add');
      await page.selectOption('#node-config-input-transport', 'embedded');
      const offered = await page
        .locator('#node-config-input-embedded option')
        .evaluateAll((options) => options.map((option) => (option as HTMLOptionElement).value));
      assert.deepEqual(offered, ['', built.broker], 'the embedded brokers of the flows are offered');
      await page.selectOption('#node-config-input-embedded', built.broker);
      await editor.typeInto('#node-config-input-name', 'editor connection');
      assert.equal(await editor.isMarkedInvalid('#node-config-input-embedded'), false);
      await editor.screenshot('broker-config-dialog');
      await page.click('#node-config-dialog-ok');
      await page.locator('#node-config-dialog-ok').waitFor({ state: 'detached' });
      built.config = await page.locator('#node-input-broker').inputValue();
      assert.notEqual(built.config, '_ADD_');

      // Validation as you type: a wildcard in a topic to publish to, QoS 0 with acknowledged delivery.
      await editor.typeInto('#node-input-topic', 'editor/+');
      assert.equal(await editor.isMarkedInvalid('#node-input-topic'), true, 'a wildcard is refused');
      await page.selectOption('#node-input-persistence', 'acknowledged');
      await page.selectOption('#node-input-qos', '0');
      assert.equal(
        await editor.isMarkedInvalid('#node-input-qos'),
        true,
        'QoS 0 is refused with acknowledged',
      );
      await editor.screenshot('out-dialog-refusing');
      // The topic may come from a msg property: a typed input, checked as a property expression.
      await editor.chooseInputType('#node-input-topic', 'msg');
      await editor.typeInto('#node-input-topic', 'payload.[');
      assert.equal(await editor.isMarkedInvalid('#node-input-topic'), true, 'a bad msg property is refused');
      await editor.chooseInputType('#node-input-topic', 'str');
      await editor.typeInto('#node-input-topic', 'editor/test');
      await page.selectOption('#node-input-qos', '1');
      await page.selectOption('#node-input-persistence', 'queued');
      assert.equal(await editor.isMarkedInvalid('#node-input-topic'), false);
      assert.equal(await editor.isMarkedInvalid('#node-input-qos'), false);
      await editor.screenshot('out-dialog');
      await editor.closeDialog();

      built.in = await editor.dragFromPalette('durable-mqtt-in', 260, 260);
      built.debug = await editor.dragFromPalette('debug', 520, 260);
      await editor.editNode(built.in);
      await page.selectOption('#node-input-broker', built.config);
      // Validation as you type: # must be the last level of a filter.
      await editor.typeInto('#node-input-topic', 'editor/#/test');
      assert.equal(await editor.isMarkedInvalid('#node-input-topic'), true, 'a misplaced # is refused');
      await editor.screenshot('in-dialog-refusing');
      await editor.typeInto('#node-input-topic', 'editor/#');
      assert.equal(await editor.isMarkedInvalid('#node-input-topic'), false);
      await editor.screenshot('in-dialog');
      await editor.closeDialog();

      await editor.wire(built.inject, built.out);
      await editor.wire(built.in, built.debug);
      assert.deepEqual(await editor.invalidNodes(), []);
      // The canvas labels show the topic, as the core nodes do; the out node's mode is its icon's badge.
      assert.equal((await editor.canvasLabel(built.in)).text, 'editor/#');
      assert.equal((await editor.canvasLabel(built.out)).text, 'editor/test');
      assert.equal((await editor.canvasLabel(built.broker)).text, 'editor broker');
      assert.equal(await editor.canvasIcon(built.out), 'mqtt-out-queued.svg');
      assert.equal(await editor.canvasIcon(built.in), 'mqtt-in.svg');
    }));

  it('deploys, shows "connected" under the nodes, and shows the injected message in the debug sidebar', () =>
    showingOutput(async () => {
      await editor.deploy();
      const connected = (text: string) => text.startsWith(englishCatalog.status.connected);
      await editor.waitForStatus(built.out, connected);
      await editor.waitForStatus(built.in, connected);
      assert.match(
        await editor.statusText(built.broker),
        new RegExp(`^${englishCatalog.status['in-process-only']}`),
      );
      const debug = await editor.showSidebar('debug');
      await editor.canvasNode(built.inject).locator('.red-ui-flow-node-button').click();
      const message = debug.locator('.red-ui-debug-msg', { hasText: 'editor/test' });
      await message.first().waitFor();
      await editor.screenshot('flow');
      await editor.screenshotTo(path.join(DOCS, 'flow.png'));
      const fromOurs = comms!.debugMessages().filter((m) => m.level !== undefined);
      assert.deepEqual(fromOurs, [], 'no warning or error was logged');
    }));

  it('sets end-to-end delivery in the out and in dialogs (until the subscribers, expect, timeouts, subscriber name, max deliveries), deploys it, and a receipt comes back', () =>
    showingOutput(async () => {
      const page = editor.page;
      await editor.editNode(built.out);
      const until = page.locator('#node-input-until');
      assert.equal(await until.isVisible(), false, 'no "until" for queued persistence');
      await page.selectOption('#node-input-persistence', 'acknowledged');
      assert.equal(await until.inputValue(), 'broker', 'until the broker by default');
      assert.equal(await page.locator('#node-input-expect').isVisible(), false);
      await page.selectOption('#node-input-until', 'subscriber');
      assert.equal(
        (await page.locator('.form-tips:visible').first().innerText()).trim(),
        englishCatalog.tip['until-subscriber'],
      );
      await editor.typeInto('#node-input-expect', 'editor-consumer,');
      assert.equal(await editor.isMarkedInvalid('#node-input-expect'), true, 'a name list ending in a comma');
      await editor.typeInto('#node-input-expect', 'editor-consumer');
      assert.equal(await editor.isMarkedInvalid('#node-input-expect'), false);
      await page.locator('#durable-mqtt-out-advanced .red-ui-palette-header').click();
      await page.locator('#node-input-receiptTimeout').waitFor();
      assert.equal(await page.locator('#node-input-receiptTimeout').inputValue(), '30');
      assert.equal(
        await page.locator('#node-input-receiptTopic').getAttribute('placeholder'),
        `durable-mqtt/receipts/${built.out}`,
        'the default receipt topic, with the node id',
      );
      // Every message needs an id for its receipts: the message id options show on, and cannot be unticked.
      for (const box of ['#node-input-messageId', '#node-input-messageIdEnvelope']) {
        assert.equal(await page.locator(box).isChecked(), true, `${box} implied`);
        assert.equal(await page.locator(box).isDisabled(), true, `${box} fixed`);
      }
      assert.equal(await page.locator('.durable-mqtt-message-id-implied').isVisible(), true);
      await editor.typeInto('#node-input-receiptTimeout', '0');
      assert.equal(await editor.isMarkedInvalid('#node-input-receiptTimeout'), true, 'a timeout of 0 s');
      await editor.typeInto('#node-input-receiptTimeout', '5');
      await editor.typeInto('#node-input-giveUpAfter', '-1');
      assert.equal(await editor.isMarkedInvalid('#node-input-giveUpAfter'), true, 'a negative give up');
      await editor.typeInto('#node-input-giveUpAfter', '600');
      await editor.typeInto('#node-input-receiptTopic', 'editor/receipts/#');
      assert.equal(await editor.isMarkedInvalid('#node-input-receiptTopic'), true, 'a wildcard');
      await editor.typeInto('#node-input-receiptTopic', 'editor/receipts');
      for (const field of ['expect', 'receiptTimeout', 'giveUpAfter', 'receiptTopic'])
        assert.equal(await editor.isMarkedInvalid(`#node-input-${field}`), false, field);
      await editor.screenshot('out-dialog-until-subscriber');
      await editor.closeDialog();
      assert.deepEqual(await editor.outputLabels(built.out), [
        englishCatalog.canvas['output-subscriber-receipts'],
      ]);
      built.receipts = await editor.dragFromPalette('debug', 780, 160);
      await editor.setProperties(built.receipts, { complete: 'delivery', targetType: 'msg' });
      await editor.wire(built.out, built.receipts);

      await editor.editNode(built.in);
      const maxDeliveries = page.locator('#node-input-maxDeliveries');
      assert.equal(await maxDeliveries.isVisible(), false, 'max deliveries only with ack: complete');
      await page.selectOption('#node-input-ack', 'complete');
      assert.equal(await maxDeliveries.inputValue(), '5');
      await editor.typeInto('#node-input-maxDeliveries', '-1');
      assert.equal(await editor.isMarkedInvalid('#node-input-maxDeliveries'), true, 'a negative count');
      await editor.typeInto('#node-input-maxDeliveries', '0');
      assert.equal(await editor.isMarkedInvalid('#node-input-maxDeliveries'), false, '0: no quarantine');
      await editor.typeInto('#node-input-maxDeliveries', '3');
      await page.locator('#durable-mqtt-in-advanced .red-ui-palette-header').click();
      const subscriberName = page.locator('#node-input-subscriberName');
      await subscriberName.waitFor();
      assert.equal(
        await subscriberName.getAttribute('placeholder'),
        built.in,
        'the node id, as it has no name',
      );
      await editor.typeInto('#node-input-name', 'editor consumer');
      assert.equal(await subscriberName.getAttribute('placeholder'), 'editor consumer', 'else its name');
      await editor.typeInto('#node-input-name', '');
      await editor.typeInto('#node-input-subscriberName', 'editor,consumer');
      assert.equal(await editor.isMarkedInvalid('#node-input-subscriberName'), true, 'a comma');
      await editor.typeInto('#node-input-subscriberName', 'editor-consumer');
      // The out node sends its id and reply address in an envelope on MQTT 3.1.1.
      await page.locator('#node-input-unwrapEnvelope').check();
      await editor.screenshot('in-dialog-receipts');
      await editor.closeDialog();
      assert.deepEqual(await editor.outputLabels(built.in), [
        englishCatalog.canvas['output-messages'],
        englishCatalog.canvas['output-quarantined'],
      ]);
      assert.equal(
        await editor.canvasNode(built.in).locator('.red-ui-flow-port-output').count(),
        2,
        'a second output, for quarantined messages',
      );
      assert.deepEqual(await editor.invalidNodes(), []);

      await editor.deploy();
      const saved: Record<string, unknown>[] = await (await fetch(`${nodeRed!.baseUrl}/flows`)).json();
      const pick = (id: string, names: string[]) => {
        const node = saved.find((n) => n.id === id)!;
        return Object.fromEntries(names.map((name) => [name, node[name]]));
      };
      assert.deepEqual(
        pick(built.out, [
          'persistence',
          'until',
          'expect',
          'receiptTimeout',
          'giveUpAfter',
          'receiptTopic',
          'messageId',
          'messageIdEnvelope',
          'wires',
        ]),
        {
          persistence: 'acknowledged',
          until: 'subscriber',
          expect: 'editor-consumer',
          receiptTimeout: '5',
          giveUpAfter: '600',
          receiptTopic: 'editor/receipts',
          // What the user chose stays, for when the node waits for the broker again.
          messageId: false,
          messageIdEnvelope: false,
          wires: [[built.receipts]],
        },
      );
      assert.deepEqual(
        pick(built.in, ['ack', 'maxDeliveries', 'subscriberName', 'unwrapEnvelope', 'wires']),
        {
          ack: 'complete',
          maxDeliveries: '3',
          subscriberName: 'editor-consumer',
          unwrapEnvelope: true,
          wires: [[built.debug], []],
        },
      );
      await editor.waitForStatus(built.out, (text) => text.startsWith(englishCatalog.status.connected));
      const logged = comms!.debugMessages().length;
      await editor.canvasNode(built.inject).locator('.red-ui-flow-node-button').click();
      await waitFor(
        () => comms!.debugMessages().some((m) => m.id === built.receipts),
        'the receipt at the debug node',
        20_000,
      );
      const delivery = JSON.parse(
        comms!.debugMessages().find((m) => m.id === built.receipts)!.msg as string,
      ) as { status: string; receipts: { by: string }[] };
      assert.equal(delivery.status, 'delivered');
      assert.deepEqual(
        delivery.receipts.map((receipt) => receipt.by),
        ['editor-consumer'],
      );
      const complaints = comms!
        .debugMessages()
        .slice(logged)
        .filter((m) => m.level !== undefined);
      assert.deepEqual(complaints, [], 'no warning or error was logged');
    }));

  it("tests the connection from the broker config dialog: success, then the network's refusal", () =>
    showingOutput(async () => {
      const page = editor.page;
      await editor.editNode(built.out);
      await editor.openConfigDialog('broker', 'edit');
      await page.locator('#durable-mqtt-broker-test').click();
      const result = page.locator('#durable-mqtt-broker-test-result');
      await page.locator('#durable-mqtt-broker-test-result.durable-mqtt-test-ok').waitFor();
      assert.equal((await result.textContent())?.trim(), englishCatalog.test.connected);
      await editor.screenshot('test-connection-success');
      // Unsaved values are what the test uses: a port where nothing listens.
      await page.selectOption('#node-config-input-transport', 'mqtt');
      await editor.typeInto('#node-config-input-host', '127.0.0.1');
      await editor.typeInto('#node-config-input-port', String(await freePort()));
      await page.locator('#durable-mqtt-broker-test').click();
      await page.locator('#durable-mqtt-broker-test-result.durable-mqtt-test-failed').waitFor();
      assert.match((await result.textContent()) ?? '', /ECONNREFUSED/);
      await editor.screenshot('test-connection-refused');
      await page.click('#node-config-dialog-cancel');
      await page.locator('#node-config-dialog-cancel').waitFor({ state: 'detached' });
      await editor.cancelDialog();
    }));

  it('broker config dialog: MQTT 3.1, 3.1.1 and 5 (on the embedded transport too), topic aliases with MQTT 5 only, and connect automatically', () =>
    showingOutput(async () => {
      const page = editor.page;
      await editor.editNode(built.out);
      await editor.openConfigDialog('broker', 'edit');
      const version = '#node-config-input-protocolVersion';
      const aliases = page.locator('#node-config-input-topicAliases');
      const manualTip = page.locator('#durable-mqtt-broker-manual-connect');
      await page.selectOption(version, '5');
      assert.equal(await page.inputValue(version), '5', 'MQTT 5 on embedded');
      await page.selectOption(version, '3');
      assert.equal(await page.inputValue(version), '3', 'MQTT 3.1 on embedded');
      assert.equal(await page.locator('#node-config-input-autoConnect').isChecked(), true, 'on by default');
      assert.equal(await manualTip.isVisible(), false);
      await page.locator('#node-config-input-autoConnect').uncheck();
      assert.equal(await manualTip.isVisible(), true, 'the tip on connecting on demand');
      await page.selectOption('#node-config-input-transport', 'mqtt');
      assert.equal(await aliases.isVisible(), false, 'no topic aliases before MQTT 5');
      await page.selectOption(version, '5');
      assert.equal(await aliases.isVisible(), true, 'topic aliases with MQTT 5');
      await editor.screenshot('broker-config-mqtt5-options');
      const valid = await page.evaluate(() => {
        type Validate = (this: object, value: unknown, options: object) => unknown;
        const red = (
          window as unknown as {
            RED: { nodes: { getType(type: string): { defaults: Record<string, { validate: Validate }> } } };
          }
        ).RED;
        const { validate } = red.nodes.getType('durable-mqtt-broker-config').defaults.protocolVersion;
        return ['3', '4', '5', '6'].map((value) => validate.call({}, value, {}) === true);
      });
      assert.deepEqual(valid, [true, true, true, false], 'the protocol validator');
      await page.click('#node-config-dialog-cancel');
      await page.locator('#node-config-dialog-cancel').waitFor({ state: 'detached' });
      await editor.cancelDialog();
    }));

  it('imports each example from Import → Examples onto a new flow and deploys it: no invalid node, no error logged, every embedded connection up', () =>
    showingOutput(async () => {
      for (const example of EXAMPLES) {
        const tab = await editor.importExample(MODULE, example);
        const nodes = await editor.nodesOn(tab);
        assert.ok(nodes.length > 0, `${example} brought nodes`);
        assert.deepEqual(await editor.invalidNodes(), [], `${example}: nodes the editor marks invalid`);
        const flowFile = JSON.parse(readFileSync(path.join(root, 'examples', `${example}.json`), 'utf8'));
        const logged = comms!.debugMessages().length;
        await editor.deploy();
        await editor.screenshot(`example-${example}`);
        // Every in/out node on the embedded broker connects; one naming an external broker may not.
        const configs = new Map<string, Record<string, unknown>>(
          flowFile
            .filter((n: { type: string }) => n.type === 'durable-mqtt-broker-config')
            .map((n: { id: string }) => [n.id, n]),
        );
        for (const node of flowFile.filter((n: { type: string }) => /^durable-mqtt-(in|out)$/.test(n.type))) {
          if (configs.get(node.broker)?.transport !== 'embedded') continue;
          await editor.waitForStatus(node.id, (text) => text.startsWith(englishCatalog.status.connected));
        }
        // Errors a node logs reach the debug sidebar; accepted: 1883 taken on this machine (the broker
        // then serves in-process). The examples on a broker of your own come with their mqtt nodes
        // disabled, so their broker configs connect to nothing and log nothing.
        const errors = comms!
          .debugMessages()
          .slice(logged)
          .filter((m) => m.level !== undefined && m.level <= 20)
          .filter((m) => m.msg !== PORT_IN_USE);
        assert.deepEqual(errors, [], `${example}: errors logged after the deploy`);
        // A label as short as a core node's: the topic, without the mode.
        for (const node of flowFile.filter((n: { type: string }) => /^durable-mqtt-(in|out)$/.test(n.type))) {
          const label = await editor.canvasLabel(node.id);
          assert.ok(label.width <= MAX_LABEL_WIDTH, `${example}: "${label.text}" is ${label.width} px wide`);
        }
        if (example === '04-critical-commands') {
          // A window wide enough for the whole flow beside the palette and the sidebar.
          await editor.page.setViewportSize({ width: 1920, height: 1000 });
          try {
            const area = await editor.areaOf(nodes.map((node) => node.id));
            await editor.screenshotTo(path.join(DOCS, 'example-04.png'), area);
          } finally {
            await editor.page.setViewportSize({ width: 1400, height: 900 });
          }
        }
      }
    }));

  it("keeps an in or out node's label under 200 px: the topic, shortened in the middle when long, and the mode as the icon's badge", () =>
    showingOutput(async () => {
      const long = 'factory/building-north/floor-3/line-7/valves/command';
      const wide = `${'W'.repeat(40)}/state`;
      const nodes = [
        {
          id: 'e0e0c0ffee00a001',
          type: 'durable-mqtt-out',
          topic: long,
          persistence: 'acknowledged',
          y: 560,
        },
        { id: 'e0e0c0ffee00a002', type: 'durable-mqtt-out', topic: wide, persistence: 'none', y: 620 },
        { id: 'e0e0c0ffee00a003', type: 'durable-mqtt-in', topic: `${long}/#`, ack: 'complete', y: 680 },
      ];
      await editor.addNodes(nodes.map((node) => ({ ...node, x: 300 })));
      const [outLong, outWide, inLong] = await Promise.all(nodes.map((node) => editor.canvasLabel(node.id)));
      for (const label of [outLong, outWide, inLong])
        assert.ok(label.width <= MAX_LABEL_WIDTH, `"${label.text}" is ${label.width} px wide`);
      // The start and the end of the topic stay: its root and the levels that tell topics apart.
      assert.match(outLong.text, /^factory\/…\/(.+\/)?command$/);
      assert.match(inLong.text, /^factory\/…\/(.+\/)?command\/#$/);
      assert.match(outWide.text, /^W+…W*\/state$/);
      assert.deepEqual(await Promise.all(nodes.map((node) => editor.canvasIcon(node.id))), [
        'mqtt-out-acknowledged.svg',
        'mqtt-out.svg',
        'mqtt-in-complete.svg',
      ]);
      await editor.screenshot('long-labels');
    }));

  it("shows example 04's out dialog (acknowledged, message ids) on one screen of 1280×800 with one tip, the rest folded under Advanced", () =>
    showingOutput(async () => {
      const page = editor.page;
      const out = exampleNode('04-critical-commands', 'durable-mqtt-out');
      await page.setViewportSize({ width: 1280, height: 800 });
      try {
        await editor.showFlowOf(out);
        await editor.editNode(out);
        const tray = page.locator('#red-ui-editor-stack .red-ui-tray').last();
        const body = tray.locator('.red-ui-tray-body-wrapper');
        const overflow = await body.evaluate((element) => element.scrollHeight - element.clientHeight);
        assert.ok(overflow <= 0, `the first screen scrolls by ${overflow} px`);
        assert.equal(await tray.locator('.form-tips:visible').count(), 1, 'one tip');
        assert.equal(
          (await tray.locator('.form-tips:visible').innerText()).trim(),
          englishCatalog.tip['persistence-acknowledged'],
        );
        assert.equal(await page.locator('#node-input-messageId').isVisible(), false, 'folded under Advanced');
        await editor.screenshotTo(path.join(DOCS, 'out-dialog.png'), tray);
        await page.locator('#durable-mqtt-out-advanced .red-ui-palette-header').click();
        await page.locator('#node-input-messageId').waitFor();
        assert.equal(await page.locator('#node-input-messageId').isChecked(), true);
        assert.equal(await page.locator('#node-input-messageIdEnvelope').isChecked(), true);
        assert.equal(await page.locator('#node-input-maxMessages').inputValue(), '100000');
        assert.equal(await page.locator('#node-input-overflow').isVisible(), true);
        // Its broker config uses MQTT 3.1.1: the MQTT 5 properties are for another.
        assert.equal(
          await page.locator('#durable-mqtt-out-advanced .durable-mqtt-v5-note').isVisible(),
          true,
        );
        assert.equal(await page.locator('#node-input-contentType').isVisible(), false);
        await editor.screenshot('out-dialog-advanced');
        await editor.cancelDialog();

        // The in node's tips say what its acknowledgment and envelope choices do, whichever is chosen.
        const input = exampleNode('04-critical-commands', 'durable-mqtt-in');
        await editor.editNode(input);
        const inTray = page.locator('#red-ui-editor-stack .red-ui-tray').last();
        assert.deepEqual(
          (await inTray.locator('.form-tips:visible').allInnerTexts()).map((text) => text.trim()),
          [englishCatalog.tip['ack-complete']],
        );
        await page.selectOption('#node-input-ack', 'receipt');
        assert.equal(
          (await inTray.locator('.form-tips:visible').innerText()).trim(),
          englishCatalog.tip['ack-receipt'],
        );
        await page.locator('#durable-mqtt-in-advanced .red-ui-palette-header').click();
        await page.locator('#node-input-unwrapEnvelope').waitFor();
        assert.equal(
          (await inTray.locator('.form-tips:visible').last().innerText()).trim(),
          englishCatalog.tip.unwrap,
        );
        await page.locator('#node-input-unwrapEnvelope').uncheck();
        assert.equal(
          (await inTray.locator('.form-tips:visible').last().innerText()).trim(),
          englishCatalog.tip['no-unwrap'],
        );
        await editor.cancelDialog();
      } finally {
        await page.setViewportSize({ width: 1400, height: 900 });
      }
    }));

  it('shows the MQTT 5 properties and subscription options for a broker config with MQTT 5, checked as typed', () =>
    showingOutput(async () => {
      const page = editor.page;
      const out = exampleNode('06-shared-subscription', 'durable-mqtt-out');
      await editor.showFlowOf(out);
      await editor.editNode(out);
      await page.locator('#durable-mqtt-out-advanced .red-ui-palette-header').click();
      await page.locator('#node-input-contentType').waitFor();
      assert.equal(await page.locator('#durable-mqtt-out-advanced .durable-mqtt-v5-note').isVisible(), false);
      const typed: [string, string, boolean][] = [
        ['#node-input-userProps', '{"site": 1}', true],
        ['#node-input-userProps', '{"site": "north"}', false],
        ['#node-input-expiry', '-1', true],
        ['#node-input-expiry', '3600', false],
        ['#node-input-respTopic', 'replies/+', true],
        ['#node-input-respTopic', 'replies/worker-1', false],
      ];
      for (const [field, text, refused] of typed) {
        await editor.typeInto(field, text);
        assert.equal(await editor.isMarkedInvalid(field), refused, `${field} with ${text}`);
      }
      await editor.screenshot('out-dialog-mqtt5');
      await editor.cancelDialog();

      const input = exampleNode('06-shared-subscription', 'durable-mqtt-in');
      await editor.editNode(input);
      await page.locator('#durable-mqtt-in-advanced .red-ui-palette-header').click();
      for (const field of ['#node-input-nl', '#node-input-rap', '#node-input-rh'])
        assert.equal(await page.locator(field).isVisible(), true, `${field} shown`);
      assert.equal(await page.locator('#node-input-rh').inputValue(), '0');
      await editor.screenshot('in-dialog-mqtt5');
      await editor.cancelDialog();
    }));

  it('switches the editor to French: dialog labels, help, and drop-downs wide enough for their French choices', () =>
    showingOutput(async () => {
      const page = editor.page;
      await editor.switchLanguage('fr');
      await editor.canvasNode(built.out).waitFor();
      await editor.showFlowOf(built.out);
      assert.equal((await editor.canvasLabel(built.out)).text, 'editor/test');
      await editor.editNode(built.out);
      assert.equal(
        (await page.locator('label[for="node-input-broker"]').textContent())?.trim(),
        frenchCatalog.label.broker,
      );
      assert.equal(
        (await page.locator('label[for="node-input-persistence"]').textContent())?.trim(),
        frenchCatalog.label.persistence,
      );
      assert.equal(
        (await page.locator('#durable-mqtt-out-advanced .red-ui-palette-header').textContent())?.trim(),
        frenchCatalog.sections.advanced,
      );
      await editor.screenshot('out-dialog-french');
      await page.locator('#durable-mqtt-out-advanced .red-ui-palette-header').click();
      await page.locator('#node-input-overflow').waitFor();
      assert.deepEqual(await editor.cutOffChoices(), [], 'drop-down choices cut off');
      await editor.screenshot('out-dialog-french-advanced');
      await editor.cancelDialog();
      // An in node on a broker config with MQTT 5 shows its subscription options too.
      const input = exampleNode('06-shared-subscription', 'durable-mqtt-in');
      await editor.showFlowOf(input);
      await editor.editNode(input);
      await page.locator('#durable-mqtt-in-advanced .red-ui-palette-header').click();
      await page.locator('#node-input-rh').waitFor();
      assert.deepEqual(await editor.cutOffChoices(), [], 'drop-down choices cut off');
      await editor.screenshot('in-dialog-french-advanced');
      await editor.cancelDialog();
      await editor.showFlowOf(built.out);
      await editor.canvasNode(built.out).locator('.red-ui-flow-node').click();
      const help = await editor.showSidebar('help');
      await help.locator('h3', { hasText: 'Entrées' }).waitFor();
      const frenchHelp = readFileSync(path.join(root, 'locales', 'fr', 'mqtt-out.html'), 'utf8');
      const firstParagraph = /<p>([^<]+)/.exec(frenchHelp)![1].replace(/\s+/g, ' ').trim();
      assert.ok((await help.textContent())!.replace(/\s+/g, ' ').includes(firstParagraph), 'the French help');
      await editor.screenshot('help-french');
    }));
});
