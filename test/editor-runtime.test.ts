import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'mocha';
import { chromium, type Browser, type Route } from 'playwright-core';
import { verifyPassword } from '../nodes/lib/broker/passwords.js';
import { filterProblem, publishTopicProblem, type TopicProblem } from '../nodes/lib/topic.js';
import {
  InvalidReceiptSettingError,
  readReceiptSettings,
  type ReceiptSettingsDef,
} from '../nodes/node-red/receipt-settings.js';
import { Editor, showingNodeRedAndEditor } from './support/editor.js';
import { englishCatalog } from './support/hello-world.js';
import { repositoryNodeRed, startNodeRed } from './support/node-red-install.js';
import { linkedUserDirectory } from './support/user-directory.js';
import { NodeRedProcess, temporaryDirectory } from './support/node-red-process.js';
import { findBinary, skipUnlessInstalled } from './support/services.js';

const root = path.resolve(__dirname, '..');
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

/** What a check says of a topic field: accepted, or why not. */
type Verdict = 'accepted' | TopicProblem;

/**
 * Topic fields as a user may fill them in, with what the runtime makes of them: as a topic to
 * publish to (the out node's topic, the broker config's birth, close and will topics) and as a
 * filter to subscribe to (the in node's topic).
 */
const TOPIC_FIELDS: { field: string; publish: Verdict; filter: Verdict }[] = [
  { field: 'a/b/c', publish: 'accepted', filter: 'accepted' },
  { field: '/', publish: 'accepted', filter: 'accepted' },
  { field: 'a//b', publish: 'accepted', filter: 'accepted' },
  { field: '$SYS/broker/load', publish: 'accepted', filter: 'accepted' },
  { field: 'with spaces/in it', publish: 'accepted', filter: 'accepted' },
  { field: 'ünïcödé/€/😀', publish: 'accepted', filter: 'accepted' },
  // The runtime trims a node's topic; an empty one to publish to means none (msg.topic, no message).
  { field: ' a/b ', publish: 'accepted', filter: 'accepted' },
  { field: '', publish: 'accepted', filter: 'empty' },
  { field: '   ', publish: 'accepted', filter: 'empty' },
  { field: 'a/+ ', publish: 'wildcard-in-topic', filter: 'accepted' },
  { field: '+', publish: 'wildcard-in-topic', filter: 'accepted' },
  { field: '#', publish: 'wildcard-in-topic', filter: 'accepted' },
  { field: 'a/+/c', publish: 'wildcard-in-topic', filter: 'accepted' },
  { field: '+/+/#', publish: 'wildcard-in-topic', filter: 'accepted' },
  { field: 'a/#/c', publish: 'wildcard-in-topic', filter: 'hash-not-last' },
  { field: '#/a', publish: 'wildcard-in-topic', filter: 'hash-not-last' },
  { field: 'a#', publish: 'wildcard-in-topic', filter: 'wildcard-not-whole-level' },
  { field: 'a/#b', publish: 'wildcard-in-topic', filter: 'wildcard-not-whole-level' },
  { field: 'a/b+', publish: 'wildcard-in-topic', filter: 'wildcard-not-whole-level' },
  { field: '+a/b', publish: 'wildcard-in-topic', filter: 'wildcard-not-whole-level' },
  { field: '$share/group/a/+', publish: 'wildcard-in-topic', filter: 'accepted' },
  { field: '$share/group/a/b', publish: 'accepted', filter: 'accepted' },
  { field: '$share/group/#', publish: 'wildcard-in-topic', filter: 'accepted' },
  { field: '$share/group', publish: 'accepted', filter: 'bad-shared-subscription' },
  { field: '$share//a', publish: 'accepted', filter: 'bad-shared-subscription' },
  { field: '$share/group/', publish: 'accepted', filter: 'bad-shared-subscription' },
  { field: '$share/g+/a', publish: 'wildcard-in-topic', filter: 'bad-shared-subscription' },
  { field: '$share/group/a/#/b', publish: 'wildcard-in-topic', filter: 'hash-not-last' },
  { field: 'a\u0000b', publish: 'nul-character', filter: 'nul-character' },
  { field: 'x'.repeat(65535), publish: 'accepted', filter: 'accepted' },
  { field: 'x'.repeat(65536), publish: 'too-long', filter: 'too-long' },
  { field: '€'.repeat(21846), publish: 'too-long', filter: 'too-long' },
  { field: '😀'.repeat(16384), publish: 'too-long', filter: 'too-long' },
];

/** The runtime's verdict on a topic to publish to, read from a node's field (nodes/mqtt-out.ts, broker-config.ts). */
function runtimeOnPublishField(field: string): Verdict {
  const topic = field.trim();
  return topic === '' ? 'accepted' : (publishTopicProblem(topic) ?? 'accepted');
}

/** The runtime's verdict on the filter of an in node's field (nodes/mqtt-in.ts). */
function runtimeOnFilterField(field: string): Verdict {
  return filterProblem(field.trim()) ?? 'accepted';
}

/** What a validator's answer says, in the terms of lib/topic.ts; `required` is the text for an empty field. */
function editorVerdict(answer: boolean | string, invalid: string, required?: string): Verdict | string {
  if (answer === true) return 'accepted';
  if (typeof answer === 'string' && answer === required) return 'empty';
  for (const [problem, reason] of Object.entries(englishCatalog['topic-problem'] as Record<string, string>))
    if (answer === invalid.replace('__reason__', reason)) return problem;
  return `an answer of no topic problem: ${JSON.stringify(answer)}`;
}

/** A validator as Node-RED calls it: the node as `this`, the value, options. */
type PageValidator = (this: object, value: unknown, options: object) => boolean | string;

/** The package's node types as the editor's page registered them, for page code. */
interface PageTypes {
  nodes: { getType(type: string): { defaults: Record<string, { validate?: PageValidator }> } | undefined };
}

describe('the editor in Chromium against the runtime', () => {
  let userDir: string;
  let nodeRed: NodeRedProcess | undefined;
  let browser: Browser | undefined;
  let editor: Editor;
  const showingOutput = showingNodeRedAndEditor(
    () => nodeRed,
    () => editor,
  );

  before(function () {
    skipUnlessInstalled(this, 'chromium', chromiumBinary);
  });

  before(async function () {
    this.timeout(120_000);
    const screenshots = mkdtempSync(path.join(os.tmpdir(), 'durable-mqtt-editor-runtime-screenshots-'));
    console.log(`# screenshots of the editor: ${screenshots}`);
    // The package from this working tree (its dist/), linked as `npm install <folder>` would.
    userDir = linkedUserDirectory(temporaryDirectory('durable-mqtt-editor-runtime-'));
    writeFileSync(path.join(userDir, 'flows.json'), JSON.stringify(FLOWS));
    nodeRed = await startNodeRed(repositoryNodeRed(), userDir);
    browser = await chromium.launch({ executablePath: chromiumBinary, args: ['--no-sandbox'] });
    editor = await Editor.open(browser, nodeRed.baseUrl, screenshots);
  });

  after(async () => {
    await browser?.close();
    nodeRed?.kill();
    if (userDir) rmSync(userDir, { recursive: true, force: true });
  });

  describe('the dialogs check topics and filters with the runtime’s own checks', () => {
    it('accepts and refuses the same topic fields as the runtime, for the same reason', () =>
      showingOutput(async () => {
        const fields = TOPIC_FIELDS.map((entry) => entry.field);
        const answers = await editor.page.evaluate((values) => {
          const red = (window as unknown as { RED: PageTypes }).RED;
          const out = red.nodes.getType('durable-mqtt-out')!.defaults.topic.validate!;
          const input = red.nodes.getType('durable-mqtt-in')!.defaults.topic.validate!;
          const broker = red.nodes.getType('durable-mqtt-broker-config')!.defaults;
          return values.map((value) => ({
            out: out.call({ topicType: 'str' }, value, {}),
            birth: broker.birthTopic.validate!.call({}, value, {}),
            close: broker.closeTopic.validate!.call({}, value, {}),
            will: broker.willTopic.validate!.call({}, value, {}),
            in: input.call({ topicType: 'static' }, value, {}),
          }));
        }, fields);
        const publishInvalid: string = englishCatalog.validation['publish-topic'];
        const filterInvalid: string = englishCatalog.validation.filter;
        const required: string = englishCatalog.validation['topic-required'];
        const disagreements: string[] = [];
        TOPIC_FIELDS.forEach(({ field, publish, filter }, index) => {
          const shown = JSON.stringify(
            field.length > 40 ? `${field.slice(0, 20)}… (${field.length})` : field,
          );
          const runtime = { publish: runtimeOnPublishField(field), filter: runtimeOnFilterField(field) };
          assert.equal(runtime.publish, publish, `the runtime on ${shown} to publish to`);
          assert.equal(runtime.filter, filter, `the runtime on ${shown} as a filter`);
          const answer = answers[index];
          const dialogs = {
            'the out node': editorVerdict(answer.out, publishInvalid),
            'the birth topic': editorVerdict(answer.birth, publishInvalid),
            'the close topic': editorVerdict(answer.close, publishInvalid),
            'the will topic': editorVerdict(answer.will, publishInvalid),
            'the in node': editorVerdict(answer.in, filterInvalid, required),
          };
          for (const [where, verdict] of Object.entries(dialogs)) {
            const expected = where === 'the in node' ? runtime.filter : runtime.publish;
            if (verdict !== expected)
              disagreements.push(`${where} on ${shown}: the editor says ${verdict}, the runtime ${expected}`);
          }
        });
        assert.deepEqual(disagreements, []);
      }));

    it('has every validator declare (value, options), so that Node-RED shows the reason it returns', () =>
      showingOutput(async () => {
        const packageJson = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
        const types = Object.keys(packageJson['node-red'].nodes);
        const arities = await editor.page.evaluate((names) => {
          const red = (window as unknown as { RED: PageTypes }).RED;
          return names.flatMap((type) =>
            Object.entries(red.nodes.getType(type)!.defaults)
              .filter(([, property]) => property.validate)
              .map(([name, property]) => `${type}.${name}: ${property.validate!.length}`),
          );
        }, types);
        assert.ok(arities.length > 20, `validators found: ${arities.length}`);
        assert.deepEqual(
          arities.filter((entry) => !entry.endsWith(': 2')),
          [],
        );
      }));
  });

  describe('the dialogs check the MQTT 5 settings of the in and out nodes', () => {
    /** Values of each setting, with whether the dialog accepts them. */
    type Setting = { type: string; property: string; value: unknown; accepted: boolean };
    const valuesOf = (type: string, properties: string[], table: [unknown, boolean][]): Setting[] =>
      properties.flatMap((property) =>
        table.map(([value, accepted]) => ({ type, property, value, accepted })),
      );
    const SETTINGS: Setting[] = [
      ...valuesOf(
        'durable-mqtt-out',
        ['contentType'],
        [
          ['', true],
          ['application/json', true],
          ['text/plain; charset=utf-8', true],
          ['a\u0000b', false],
          ['x'.repeat(65535), true],
          ['x'.repeat(65536), false],
          ['€'.repeat(21846), false],
        ],
      ),
      ...valuesOf(
        'durable-mqtt-out',
        ['respTopic'],
        [
          ['', true],
          ['replies/worker-1', true],
          [' replies/worker-1 ', true],
          ['replies/+', false],
          ['replies/#', false],
          ['a\u0000b', false],
        ],
      ),
      ...valuesOf(
        'durable-mqtt-out',
        ['correl'],
        [
          ['', true],
          ['request-42', true],
          ['x'.repeat(65535), true],
          ['x'.repeat(65536), false],
        ],
      ),
      ...valuesOf(
        'durable-mqtt-out',
        ['userProps'],
        [
          ['', true],
          ['{}', true],
          ['{"site": "north", "line": "7"}', true],
          ['{"site": 1}', false],
          ['{"site": ["a", "b"]}', false],
          ['["site"]', false],
          ['"site"', false],
          ['null', false],
          ['{site: "north"}', false],
        ],
      ),
      ...valuesOf(
        'durable-mqtt-out',
        ['expiry'],
        [
          ['', true],
          ['0', true],
          ['3600', true],
          ['4294967295', true],
          ['4294967296', false],
          ['-1', false],
          ['1.5', false],
          ['1e3', false],
          ['soon', false],
        ],
      ),
      ...valuesOf(
        'durable-mqtt-in',
        ['nl', 'rap'],
        [
          [undefined, true],
          [false, true],
          [true, true],
          ['true', false],
        ],
      ),
      ...valuesOf(
        'durable-mqtt-in',
        ['rh'],
        [
          [undefined, true],
          ['0', true],
          ['1', true],
          ['2', true],
          [2, true],
          ['3', false],
          ['', false],
        ],
      ),
    ];

    it('accepts the values the runtime can send and refuses the others, with a reason', () =>
      showingOutput(async () => {
        const answers = await editor.page.evaluate((settings) => {
          const red = (window as unknown as { RED: PageTypes }).RED;
          return settings.map(({ type, property, value }) =>
            red.nodes.getType(type)!.defaults[property].validate!.call({}, value, {}),
          );
        }, SETTINGS);
        const wrong = SETTINGS.flatMap(({ type, property, value, accepted }, index) => {
          const answer = answers[index];
          const shown = `${type}.${property} = ${JSON.stringify(value)?.slice(0, 40)}`;
          if (accepted) return answer === true ? [] : [`${shown}: refused (${answer})`];
          return typeof answer === 'string' && answer.length > 0 ? [] : [`${shown}: ${answer}`];
        });
        assert.deepEqual(wrong, []);
      }));

    it('gives new nodes the defaults the runtime reads: no MQTT 5 property, no subscription option', () =>
      showingOutput(async () => {
        const defaults = await editor.page.evaluate(() => {
          const red = (window as unknown as { RED: PageTypes }).RED;
          return [
            ['durable-mqtt-out', ['contentType', 'respTopic', 'correl', 'userProps', 'expiry']],
            ['durable-mqtt-in', ['nl', 'rap', 'rh']],
          ].map(([type, names]) =>
            Object.fromEntries(
              (names as string[]).map((name) => [
                name,
                (red.nodes.getType(type as string)!.defaults[name] as { value?: unknown }).value,
              ]),
            ),
          );
        });
        assert.deepEqual(defaults, [
          { contentType: '', respTopic: '', correl: '', userProps: '', expiry: '' },
          { nl: false, rap: false, rh: '0' },
        ]);
      }));
  });

  describe("the out dialog checks the end-to-end settings with the runtime's rules", () => {
    type ReceiptSetting = 'expect' | 'receiptTimeout' | 'giveUpAfter' | 'receiptTopic';
    /** Values of each setting of an out node waiting for its subscribers, as a user may type them. */
    const RECEIPT_SETTINGS: [ReceiptSetting, unknown][] = [
      ['expect', ''],
      ['expect', '  '],
      ['expect', '1'],
      ['expect', '3'],
      ['expect', '1000'],
      ['expect', '1001'],
      ['expect', '0'],
      ['expect', 'left-arm'],
      ['expect', 'left-arm, right-arm'],
      ['expect', 'left-arm,,right-arm'],
      ['expect', 'left-arm,'],
      ['expect', 'x'.repeat(200)],
      ['expect', 'x'.repeat(201)],
      ['receiptTimeout', ''],
      ['receiptTimeout', 30],
      ['receiptTimeout', '0.5'],
      ['receiptTimeout', '0'],
      ['receiptTimeout', '-1'],
      ['giveUpAfter', ''],
      ['giveUpAfter', 0],
      ['giveUpAfter', '0'],
      ['giveUpAfter', '3600'],
      ['giveUpAfter', '-5'],
      ['receiptTopic', ''],
      ['receiptTopic', 'plant/receipts'],
      ['receiptTopic', ' plant/receipts '],
      ['receiptTopic', 'plant/+'],
      ['receiptTopic', 'plant/#'],
      ['receiptTopic', 'a\u0000b'],
      // Text that is no number: refused, not read as the default.
      ['receiptTimeout', 'soon'],
      ['giveUpAfter', 'never'],
    ];

    function runtimeAccepts(setting: ReceiptSetting, value: unknown): boolean {
      try {
        readReceiptSettings({ until: 'subscriber', [setting]: value }, 'e0e0c0ffee00e2e0');
        return true;
      } catch (error) {
        if (error instanceof InvalidReceiptSettingError) return false;
        throw error;
      }
    }

    /** The dialog's answers for `settings`, on an out node in the mode given. */
    function dialogAnswers(
      settings: [ReceiptSetting, unknown][],
      mode: { persistence: string; until: string },
    ): Promise<(boolean | string)[]> {
      return editor.page.evaluate(
        ({ values, node }) => {
          const red = (window as unknown as { RED: PageTypes }).RED;
          const defaults = red.nodes.getType('durable-mqtt-out')!.defaults;
          return values.map(([setting, value]) => defaults[setting].validate!.call(node, value, {}));
        },
        { values: settings, node: mode },
      );
    }

    it('accepts and refuses what the runtime does, with a reason, while the node waits for its subscribers', () =>
      showingOutput(async () => {
        const answers = await dialogAnswers(RECEIPT_SETTINGS, {
          persistence: 'acknowledged',
          until: 'subscriber',
        });
        const disagreements = RECEIPT_SETTINGS.flatMap(([setting, value], index) => {
          const runtime = runtimeAccepts(setting, value);
          const answer = answers[index];
          const dialog = answer === true;
          const shown = `${setting} = ${JSON.stringify(value)?.slice(0, 40)}`;
          if (!dialog && !(typeof answer === 'string' && answer.length > 0)) return [`${shown}: ${answer}`];
          return dialog === runtime ? [] : [`${shown}: the dialog ${dialog}, the runtime ${runtime}`];
        });
        assert.deepEqual(disagreements, []);
      }));

    it('leaves them unchecked when the node waits for the broker, as the runtime does not read them then', () =>
      showingOutput(async () => {
        const refusedValues = RECEIPT_SETTINGS.filter(([setting, value]) => !runtimeAccepts(setting, value));
        assert.ok(refusedValues.length > 5);
        for (const mode of [
          { persistence: 'acknowledged', until: 'broker' },
          { persistence: 'queued', until: 'subscriber' },
        ])
          assert.deepEqual(
            await dialogAnswers(refusedValues, mode),
            refusedValues.map(() => true),
            JSON.stringify(mode),
          );
      }));

    it('gives new nodes the defaults the runtime reads: until the broker, one receipt, 30 s, never give up, the own topic; 5 deliveries', () =>
      showingOutput(async () => {
        const wanted: [string, string[]][] = [
          ['durable-mqtt-out', ['until', 'expect', 'receiptTimeout', 'giveUpAfter', 'receiptTopic']],
          ['durable-mqtt-in', ['subscriberName', 'maxDeliveries']],
        ];
        const [out, input] = await editor.page.evaluate((types) => {
          const red = (window as unknown as { RED: PageTypes }).RED;
          return types.map(([type, names]) =>
            Object.fromEntries(
              names.map((name) => [
                name,
                (red.nodes.getType(type)!.defaults[name] as { value?: unknown }).value,
              ]),
            ),
          );
        }, wanted);
        const defaults = { out, in: input };
        assert.deepEqual(defaults, {
          out: { until: 'broker', expect: '', receiptTimeout: 30, giveUpAfter: 0, receiptTopic: '' },
          in: { subscriberName: '', maxDeliveries: 5 },
        });
        const id = 'e0e0c0ffee00e2e1';
        assert.deepEqual(
          readReceiptSettings({ ...defaults.out, until: 'subscriber' } as ReceiptSettingsDef, id),
          {
            topic: `durable-mqtt/receipts/${id}`,
            options: { expectation: { count: 1 }, timeoutMs: 30_000, giveUpAfterMs: 0, maxAwaiting: 1000 },
          },
        );
        assert.equal(
          readReceiptSettings(defaults.out as ReceiptSettingsDef, id),
          undefined,
          'until the broker: no receipts',
        );
      }));
  });

  describe('the embedded broker dialog saves the hash of the password typed, never the password', () => {
    /** The password hashes the runtime holds for the broker, by user name. */
    async function storedHashes(): Promise<Record<string, string>> {
      const response = await fetch(`${nodeRed!.baseUrl}/credentials/durable-mqtt-embedded-broker/${BROKER}`);
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

    it('stores the hash of a changed password when Done is clicked after a pause in the typing', () =>
      showingOutput(async () => {
        await typePassword(0, 'third secret');
        // Done waits while the hash is on its way, and no longer.
        await editor.page.locator('#node-dialog-ok:not(.disabled)').waitFor();
        await editor.closeDialog();
        await editor.deploy();
        assert.ok(await verifyPassword('third secret', (await storedHashes()).alice));
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
});
