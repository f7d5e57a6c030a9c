import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'mocha';
import { chromium, type Browser } from 'playwright-core';
import { Editor, showingNodeRedAndEditor } from './support/editor.js';
import { englishCatalog, HELLO, isConnected } from './support/hello-world.js';
import { CommsObserver, NodeRedProcess, temporaryDirectory } from './support/node-red-process.js';
import { newUserDirectory } from './support/user-directory.js';
import {
  npm,
  registryNodeRed,
  repositoryNodeRed,
  startNodeRed,
  type NodeRedRuntime,
} from './support/node-red-install.js';
import { copyWorkingTree } from './support/working-copy.js';
import { Mosquitto, mosquittoBinary } from './support/mosquitto.js';
import { findBinary, skipUnlessInstalled } from './support/services.js';
import { waitFor } from './support/wait.js';
import { showingOutputOnFailure } from './support/failure-output.js';

const run = promisify(execFile);
const root = path.resolve(__dirname, '..');
const MODULE = 'node-red-contrib-durable-mqtt';
const packageJson = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
/** type → dist/nodes/<name>.js, as package.json declares them to Node-RED. */
const nodeFiles: Record<string, string> = packageJson['node-red'].nodes;
const TYPES = Object.keys(nodeFiles).sort();
const NAMES = Object.values(nodeFiles).map((file) => path.basename(file, '.js'));
const LANGUAGES = readdirSync(path.join(root, 'locales')).sort();
/** The plugin whose catalog (locales/<lang>/messages.json, once per language) every node and dialog reads. */
const [PLUGIN, PLUGIN_FILE] = Object.entries<string>(packageJson['node-red'].plugins)[0];
const CATALOG_NAMESPACE = `${MODULE}/${PLUGIN}`;
const catalogFile = (lang: string) =>
  `${path.dirname(PLUGIN_FILE)}/locales/${lang}/${path.basename(PLUGIN_FILE, '.js')}.json`;
/** A catalog key as Node-RED shows it when the catalog is not loaded: "durable-mqtt.status.connected". */
const RAW_KEY = new RegExp(`durable-mqtt\\.(${Object.keys(englishCatalog).join('|')})\\.`);
const EXAMPLES = readdirSync(path.join(root, 'examples'))
  .filter((name) => name.endsWith('.json'))
  .map((name) => path.basename(name, '.json'))
  .sort();
const chromiumBinary = findBinary(['/usr/bin/chromium']);
const { broker: BROKER, inject: INJECT, out: OUT, in: IN, debug: DEBUG } = HELLO;

/** Files of the repository the packed copy leaves out: installed, generated or local state. */

/** The Node-RED lines users run: the one this repository develops on, and Node-RED 5 on the Node.js it needs. */
const NODE_RED_LINES: { name: string; runtime: (log: { text: string }) => Promise<NodeRedRuntime> }[] = [
  { name: 'Node-RED 4.1 on Node.js 20', runtime: async () => repositoryNodeRed() },
  { name: 'Node-RED 5 on Node.js 22', runtime: (log) => registryNodeRed(5, 22, log) },
];

interface NodeSet {
  id: string;
  types: string[];
  enabled: boolean;
  module: string;
  version?: string;
  err?: unknown;
}

/**
 * Every package name in the production dependency tree that `npm ls` shows in `directory`, below
 * `module` when given (an install as a dependency) or from the root (the repository's own install),
 * with the versions it has there.
 */
async function dependencyNames(directory: string, module?: string): Promise<Map<string, Set<string>>> {
  interface Entry {
    version?: string;
    dependencies?: Record<string, Entry>;
  }
  const { stdout } = await run('npm', ['ls', '--all', '--omit=dev', '--json'], {
    cwd: directory,
    maxBuffer: 64 * 1024 * 1024,
  });
  const top = JSON.parse(stdout) as Entry;
  const names = new Map<string, Set<string>>();
  const walk = (entry: Entry) => {
    for (const [name, child] of Object.entries(entry.dependencies ?? {})) {
      // An optional peer that is not installed shows without a version.
      if (!child.version) continue;
      if (!names.has(name)) names.set(name, new Set());
      names.get(name)!.add(child.version);
      walk(child);
    }
  };
  walk(module ? (top.dependencies?.[module] as Entry) : top);
  return names;
}

describe('the npm pack tarball', () => {
  let work: string;
  let tarball: string;
  let files: string[] = [];
  const npmOutput = { text: '' };

  before(async function () {
    this.timeout(300_000);
    work = temporaryDirectory('durable-mqtt-pack-');
    // npm pack runs the prepack build: in a copy, so that the repository's dist/ stays as it is.
    const source = copyWorkingTree(path.join(work, 'source'));
    const out = path.join(work, 'out');
    mkdirSync(out);
    try {
      await npm(['pack', '--pack-destination', out], source, npmOutput);
    } catch (error) {
      console.error(`--- npm output ---\n${npmOutput.text}\n---`);
      throw error;
    }
    const packed = readdirSync(out).filter((name) => name.endsWith('.tgz'));
    assert.equal(packed.length, 1, `one tarball in ${out}`);
    tarball = path.join(out, packed[0]);
    const { stdout } = await run('tar', ['-tzf', tarball]);
    files = stdout.split('\n').filter(Boolean).sort();
  });

  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('packs the built nodes with their English and French help, the catalog plugin, the icons and the examples, and no tests', () => {
    const expected = ['package/package.json', `package/${PLUGIN_FILE}`];
    for (const name of NAMES) {
      expected.push(`package/dist/nodes/${name}.js`, `package/dist/nodes/${name}.html`);
      for (const lang of LANGUAGES) expected.push(`package/dist/nodes/locales/${lang}/${name}.html`);
    }
    for (const lang of LANGUAGES) expected.push(`package/${catalogFile(lang)}`);
    for (const icon of readdirSync(path.join(root, 'icons')))
      expected.push(`package/dist/nodes/icons/${icon}`);
    for (const example of EXAMPLES) expected.push(`package/examples/${example}.json`);
    assert.deepEqual(
      expected.filter((file) => !files.includes(file)),
      [],
      'files missing from the tarball',
    );
    assert.ok(LANGUAGES.includes('en-US') && LANGUAGES.includes('fr'), 'English and French catalogs');
    assert.ok(EXAMPLES.length > 0, 'at least one example');
    assert.deepEqual(
      files.filter((file) => /^package\/(test|\.node-red|node_modules)\//.test(file)),
      [],
      'files that have no place in the tarball',
    );
  });

  it('packs each catalog once per language, beside the plugin, and no copy of it per node file', () => {
    assert.deepEqual(
      files.filter((file) => /\/locales\/[^/]+\/[^/]+\.json$/.test(file)),
      LANGUAGES.map((lang) => `package/${catalogFile(lang)}`),
    );
  });

  it("lists every example in the README's table of examples", () => {
    const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
    const listed = [...readme.matchAll(/^\| (\d\d-[\w-]+) +\|/gm)].map((match) => match[1]).sort();
    assert.deepEqual(listed, EXAMPLES);
  });

  it('ships README.md and LICENSE', () => {
    assert.deepEqual(
      ['package/LICENSE', 'package/README.md'].filter((file) => !files.includes(file)),
      [],
      'files missing from the tarball',
    );
  });

  for (const line of NODE_RED_LINES) {
    describe(`installed into a fresh user directory of ${line.name}`, () => {
      let runtime: NodeRedRuntime | undefined;
      let userDir: string;
      let nodeRed: NodeRedProcess | undefined;
      let comms: CommsObserver | undefined;
      const commandOutput = { text: '' };
      /** Runs a test step; on its first failure prints what npm and Node-RED printed. */
      const showingOutput = showingOutputOnFailure(
        () =>
          `--- npm output ---\n${commandOutput.text}\n--- Node-RED output ---\n${nodeRed?.output ?? ''}\n---`,
      );

      async function get(urlPath: string, headers: Record<string, string> = {}): Promise<Response> {
        const response = await fetch(nodeRed!.baseUrl + urlPath, { headers });
        assert.equal(response.status, 200, `GET ${urlPath}`);
        return response;
      }

      before(function () {
        this.timeout(600_000);
        return showingOutput(async () => {
          runtime = await line.runtime(commandOutput);
          console.log(`# ${line.name}: ${runtime.label}`);
          // The tarball installed as the palette manager installs a module: npm install in the user
          // directory with its arguments (@node-red/registry/lib/installer.js).
          userDir = newUserDirectory(temporaryDirectory('durable-mqtt-user-'));
          await npm(
            [
              'install',
              '--no-audit',
              '--no-update-notifier',
              '--no-fund',
              '--save',
              '--save-prefix=~',
              '--omit=dev',
              '--engine-strict',
              '--prefer-offline',
              '--',
              tarball,
            ],
            userDir,
            commandOutput,
          );
          nodeRed = await startNodeRed(runtime, userDir);
          comms = await CommsObserver.open(nodeRed.baseUrl, ['debug', 'status/#']);
        });
      });

      after(() => {
        comms?.close();
        nodeRed?.kill();
        if (userDir) rmSync(userDir, { recursive: true, force: true });
      });

      it('lists the installed module with every node type package.json declares, each enabled and without a load error', () =>
        showingOutput(async () => {
          const sets: NodeSet[] = await (await get('/nodes', { Accept: 'application/json' })).json();
          const ours = sets.filter((set) => set.module === MODULE);
          assert.deepEqual(ours.flatMap((set) => set.types).sort(), TYPES);
          for (const set of ours) {
            assert.equal(set.enabled, true, `${set.id} enabled`);
            assert.equal(set.err, undefined, `${set.id} loaded without error`);
            assert.equal(set.version, packageJson.version);
          }
          // Loaded from the installed tarball in the user directory, not from the repository.
          const info = await (await get(`/nodes/${MODULE}`, { Accept: 'application/json' })).json();
          const installed = path.join(userDir, 'node_modules', MODULE);
          assert.equal(info.path, installed);
          assert.equal(info.user, true, 'listed in the user directory package.json');
          assert.equal(lstatSync(installed).isSymbolicLink(), false);
        }));

      it('installs the dependency tree a root install has (npm ls): one aedes-persistence-redis, no peer installed beside it', () =>
        showingOutput(async () => {
          const installed = await dependencyNames(userDir, MODULE);
          const asRoot = await dependencyNames(root);
          assert.deepEqual([...installed.keys()].sort(), [...asRoot.keys()].sort());
          // Aedes names version 11 as an optional peer: under its own name it came back beside ours.
          assert.equal(
            installed.has('aedes-persistence-redis'),
            false,
            'no aedes-persistence-redis under its own name',
          );
          // Aedes 2.0.0-beta.1 brings aedes-persistence 10 for its default memory persistence, which the
          // embedded broker does not use; the persistences it passes share one aedes-persistence 11.
          const persistenceMajors = [...(installed.get('aedes-persistence') ?? [])].map(
            (v) => v.split('.')[0],
          );
          assert.deepEqual(
            persistenceMajors.sort(),
            ['10', '11'],
            'aedes-persistence 10 for Aedes, 11 for ours',
          );
        }));

      it('serves the editor templates and the English and French help of every node', () =>
        showingOutput(async () => {
          const english = await (
            await get('/nodes', { Accept: 'text/html', 'Accept-Language': 'en-US' })
          ).text();
          const french = await (await get('/nodes', { Accept: 'text/html', 'Accept-Language': 'fr' })).text();
          for (const type of TYPES)
            assert.ok(english.includes(`data-template-name="${type}"`), `template of ${type}`);
          assert.ok(!english.includes('<!-- include '), 'every include expanded');
          const source = (...parts: string[]) => readFileSync(path.join(root, ...parts), 'utf8').trim();
          for (const name of NAMES) {
            // As the build wrote it into the tarball: the templates with their includes, and the dialog's script.
            const definition = readFileSync(
              path.join(work, 'source', 'dist', 'nodes', `${name}.html`),
              'utf8',
            );
            assert.ok(english.includes(definition.trim()), `editor definition of ${name}`);
            assert.ok(
              english.includes(source('locales', 'en-US', `${name}.html`)),
              `English help of ${name}`,
            );
            assert.ok(french.includes(source('locales', 'fr', `${name}.html`)), `French help of ${name}`);
            assert.ok(
              !french.includes(source('locales', 'en-US', `${name}.html`)),
              `no English help of ${name} in French`,
            );
          }
          for (const lang of LANGUAGES) {
            // What the editor loads before the nodes' definitions: the plugins' catalogs, ours among them.
            const catalogs = await (await get(`/plugins/messages?lng=${lang}`)).json();
            const expected = JSON.parse(source('locales', lang, 'messages.json'));
            assert.deepEqual(catalogs[CATALOG_NAMESPACE], expected, `${lang} catalog`);
          }
        }));

      it("lists every example of examples/ in the editor's import library, each as the package ships it", () =>
        showingOutput(async () => {
          // Node-RED 4 serves examples under the "examples" library (the older "_examples_" logs an error).
          const modules: string[] = await (await get('/library/examples/flows/')).json();
          assert.ok(modules.includes(MODULE), `${MODULE} among ${modules.join(', ')}`);
          const entries: { fn: string }[] = await (await get(`/library/examples/flows/${MODULE}`)).json();
          assert.deepEqual(entries.map((entry) => entry.fn).sort(), EXAMPLES);
          for (const name of EXAMPLES) {
            const flow = await (await get(`/library/examples/flows/${MODULE}/${name}`)).json();
            const shipped = JSON.parse(readFileSync(path.join(root, 'examples', `${name}.json`), 'utf8'));
            assert.deepEqual(flow, shipped, name);
          }
        }));

      /**
       * Deploys an example as the editor imports it: onto a tab, its broker in-process (port 0) so no port
       * is needed; `settings` are what a user sets after importing, by node id.
       */
      async function deployExample(
        name: string,
        brokerId: string | undefined,
        settings: Record<string, Record<string, unknown>> = {},
      ): Promise<Record<string, unknown>[]> {
        const example: Record<string, unknown>[] = await (
          await get(`/library/examples/flows/${MODULE}/${name}`)
        ).json();
        const tab = { id: 'a0a1c0ffee000000', type: 'tab', label: 'imported' };
        const flow: Record<string, unknown>[] = [
          tab,
          ...example.map((node) => ({
            ...node,
            ...('x' in node ? { z: tab.id } : {}),
            ...(node.id === brokerId ? { port: '0' } : {}),
            ...settings[node.id as string],
          })),
        ];
        const deployed = await fetch(`${nodeRed!.baseUrl}/flows`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', 'Node-RED-Deployment-Type': 'full' },
          body: JSON.stringify(flow),
        });
        assert.ok(deployed.ok, `POST /flows answered ${deployed.status} ${await deployed.text()}`);
        return flow;
      }

      /** Debug and log entries of the package's nodes at warn or error level, from the `since`th entry on. */
      function ourComplaints(flow: Record<string, unknown>[], since = 0) {
        const ours = new Set(flow.filter((n) => String(n.type).startsWith('durable-mqtt-')).map((n) => n.id));
        return comms!
          .debugMessages()
          .slice(since)
          .filter((m) => m.level !== undefined && ours.has(m.id));
      }

      it('runs the imported hello-world example from the installed package: every node starts and a message goes through', () =>
        showingOutput(async () => {
          const flow = await deployExample('01-hello-world', BROKER);
          await comms!.waitForStatus(OUT, isConnected, 'the mqtt out node to connect', 30_000);
          await comms!.waitForStatus(IN, isConnected, 'the mqtt in node to connect', 30_000);
          const broker = await comms!.waitForStatus(
            BROKER,
            (s) => s.fill !== undefined,
            'a broker status',
            30_000,
          );
          assert.equal(broker.fill, 'green');
          assert.match(broker.text ?? '', new RegExp(`^${englishCatalog.status['in-process-only']} · `));
          // The broker config's log line at connecting, from the catalog in the runtime's language (en-US).
          const connectedLog = englishCatalog.log.connected.replace('__broker__', '');
          assert.ok(
            nodeRed!.logLines('info').some((line) => line.includes(`] ${connectedLog}`)),
            `"${connectedLog}…" in the log`,
          );
          assert.equal((await fetch(`${nodeRed!.baseUrl}/inject/${INJECT}`, { method: 'POST' })).status, 200);
          await waitFor(
            () => comms!.debugMessages().some((m) => m.id === DEBUG),
            'the message in the debug sidebar',
            20_000,
          );
          const msg = JSON.parse(comms!.debugMessages().find((m) => m.id === DEBUG)!.msg as string);
          assert.equal(msg.topic, 'hello/world');
          assert.equal(msg.payload, 'Hello from durable mqtt');
          // Warnings and errors nodes log reach the debug sidebar too: none came from ours.
          assert.deepEqual(ourComplaints(flow), []);
        }));

      it('runs the imported critical-commands example: a command arrives once with a receipt, its resent copy goes to duplicates', () =>
        showingOutput(async () => {
          const ids = {
            broker: 'd0a1c0ffee000402',
            open: 'd0a1c0ffee000404',
            resend: 'd0a1c0ffee000405',
            out: 'd0a1c0ffee000406',
            receipts: 'd0a1c0ffee000407',
            in: 'd0a1c0ffee000408',
            dedupe: 'd0a1c0ffee000409',
            actuator: 'd0a1c0ffee00040a',
            duplicates: 'd0a1c0ffee00040b',
          };
          const flow = await deployExample('04-critical-commands', ids.broker);
          await comms!.waitForStatus(ids.out, isConnected, 'the mqtt out node to connect', 30_000);
          await comms!.waitForStatus(ids.in, isConnected, 'the mqtt in node to connect', 30_000);
          const debugOf = (id: string) =>
            comms!
              .debugMessages()
              .filter((m) => m.id === id && m.level === undefined)
              .map((m) => JSON.parse(m.msg as string) as Record<string, unknown>);
          for (const inject of [ids.open, ids.resend, ids.resend])
            assert.equal(
              (await fetch(`${nodeRed!.baseUrl}/inject/${inject}`, { method: 'POST' })).status,
              200,
            );
          await waitFor(
            () => debugOf(ids.receipts).length === 3 && debugOf(ids.actuator).length === 2,
            'three receipts and two commands at the actuator',
            20_000,
          );
          await waitFor(
            () => debugOf(ids.duplicates).length === 1,
            'the resent copy among the duplicates',
            20_000,
          );
          const actuator = debugOf(ids.actuator);
          assert.deepEqual(actuator[0].payload, { valve: 'V12', open: true });
          assert.equal(actuator[1].messageId, '0190f000-0000-7000-8000-0000000000aa');
          const duplicate = debugOf(ids.duplicates)[0];
          assert.equal(duplicate.messageId, '0190f000-0000-7000-8000-0000000000aa');
          assert.equal((duplicate.duplicateOf as { count: number }).count, 2);
          assert.deepEqual(
            debugOf(ids.receipts).map(
              (m) => typeof m.messageId === 'string' && typeof m.delivery === 'object',
            ),
            [true, true, true],
          );
          await comms!.waitForStatus(
            ids.dedupe,
            (s) => s.text === '2 passed · 1 dropped',
            'the counts of the dedupe node',
            10_000,
          );
          assert.deepEqual(ourComplaints(flow), []);
        }));

      it('runs the imported end-to-end example: a command is delivered once both consumers have finished with it; the one the logbook refuses is quarantined and rejected', () =>
        showingOutput(async () => {
          const id = (suffix: string) => `d0a1c0ffee0008${suffix}`;
          const ids = {
            broker: id('02'),
            v12: id('04'),
            v99: id('05'),
            out: id('06'),
            receipts: id('07'),
            undelivered: id('09'),
            controller: id('0a'),
            actuator: id('0d'),
            duplicates: id('0e'),
            logbook: id('0f'),
            quarantined: id('10'),
            refusals: id('13'),
          };
          const loggedBefore = comms!.debugMessages().length;
          const flow = await deployExample('08-end-to-end-receipts', ids.broker);
          for (const node of [ids.out, ids.controller, ids.logbook])
            await comms!.waitForStatus(node, isConnected, `node ${node} to connect`, 30_000);
          const debugOf = (node: string) =>
            comms!
              .debugMessages()
              .filter((m) => m.id === node && m.level === undefined)
              .map((m) => JSON.parse(m.msg as string) as Record<string, unknown>);
          type Delivery = { status: string; receipts: { by: string }[]; by?: string; error?: string };
          const deliveries = () => debugOf(ids.receipts).map((msg) => msg.delivery as Delivery);
          const inject = async (node: string) =>
            assert.equal((await fetch(`${nodeRed!.baseUrl}/inject/${node}`, { method: 'POST' })).status, 200);

          await inject(ids.v12);
          await waitFor(() => deliveries().length === 1, 'the receipt of V12', 20_000);
          assert.equal(deliveries()[0].status, 'delivered');
          assert.deepEqual(
            deliveries()[0]
              .receipts.map((receipt) => receipt.by)
              .sort(),
            ['logbook', 'valve-controller'],
          );

          // Refused by the logbook at each of its 3 deliveries (resent after 1, 2 and 4 s), then quarantined.
          await inject(ids.v99);
          await waitFor(
            () => deliveries().some((delivery) => delivery.status === 'rejected'),
            'V99 rejected',
            30_000,
          );
          const v99 = deliveries().slice(1);
          assert.deepEqual(
            v99.map((delivery) => delivery.status),
            ['failed', 'failed', 'failed', 'rejected'],
          );
          assert.ok(
            v99.every(
              (delivery) => delivery.by === 'logbook' && /not in the register/.test(delivery.error ?? ''),
            ),
            JSON.stringify(v99),
          );
          await waitFor(() => debugOf(ids.quarantined).length === 1, 'V99 in quarantine', 10_000);
          const quarantined = debugOf(ids.quarantined)[0];
          assert.deepEqual(quarantined.payload, { valve: 'V99', open: true });
          const quarantine = quarantined.quarantine as { attempts: number; lastError: string };
          assert.equal(quarantine.attempts, 3);
          assert.match(quarantine.lastError, /valve V99 is not in the register/);
          await waitFor(
            () => debugOf(ids.undelivered).length === 1,
            "the out node's error at its Catch node",
          );
          // The logbook's errors go to its Catch node, rather than to the log.
          assert.equal(debugOf(ids.refusals).length, 3);
          // The valve controller acted on each command once (its debug node shows msg.payload); the
          // copies sent again for the logbook were dropped.
          assert.deepEqual(debugOf(ids.actuator), [
            { valve: 'V12', open: true },
            { valve: 'V99', open: true },
          ]);
          await waitFor(() => debugOf(ids.duplicates).length === 3, 'the 3 copies at the duplicates output');
          await comms!.waitForStatus(
            ids.logbook,
            (s) => /1 quarantined/.test(s.text ?? ''),
            'the count',
            10_000,
          );
          await comms!.waitForStatus(ids.out, (s) => /1 rejected/.test(s.text ?? ''), 'the count', 10_000);
          // What the node says of the quarantine in the log; the out node's error went to its Catch node.
          assert.deepEqual(
            ourComplaints(flow, loggedBefore).map((m) => [m.id, m.level]),
            [[ids.logbook, 30]],
          );
        }));

      it('runs the imported sleeping-sensor example: no reading until the sensor is started, then numbered readings arrive in order', () =>
        showingOutput(async () => {
          const ids = { broker: 'd0a3c0ffee000002', start: 'd0a3c0ffee000005', readings: 'd0a3c0ffee000009' };
          const flow = await deployExample('03-sleeping-sensor', ids.broker);
          const readings = () =>
            comms!
              .debugMessages()
              .filter((m) => m.id === ids.readings && m.level === undefined)
              .map((m) => (JSON.parse(m.msg as string) as { reading: number }).reading);
          // It used to take a reading every 3 s from the deploy on, flooding the debug sidebar.
          await new Promise((resolve) => setTimeout(resolve, 4_000));
          assert.deepEqual(readings(), [], 'no reading before the sensor is started');
          assert.equal(
            (await fetch(`${nodeRed!.baseUrl}/inject/${ids.start}`, { method: 'POST' })).status,
            200,
          );
          await waitFor(() => readings().length >= 2, 'two readings after the start', 20_000);
          assert.deepEqual(readings().slice(0, 2), [1, 2]);
          assert.deepEqual(ourComplaints(flow), []);
        }));

      it('runs the imported shared-subscription example pointed at Mosquitto: each job reaches one worker', function () {
        skipUnlessInstalled(this, 'mosquitto', mosquittoBinary);
        return showingOutput(async () => {
          const ids = {
            worker1: 'd0a1c0ffee000602',
            worker2: 'd0a1c0ffee000603',
            send: 'd0a1c0ffee000604',
            out: 'd0a1c0ffee000606',
            in1: 'd0a1c0ffee000607',
            in2: 'd0a1c0ffee000608',
            debug1: 'd0a1c0ffee000609',
            debug2: 'd0a1c0ffee00060a',
          };
          const broker = new Mosquitto();
          await broker.start();
          try {
            // What the comment node asks for: the host and port of the broker, in both broker configs.
            const address = { host: '127.0.0.1', port: String(broker.port) };
            // …then enables the disabled mqtt nodes, as its comment says.
            const enabled = { d: false };
            const flow = await deployExample('06-shared-subscription', undefined, {
              [ids.worker1]: address,
              [ids.worker2]: address,
              [ids.out]: enabled,
              [ids.in1]: enabled,
              [ids.in2]: enabled,
            });
            for (const id of [ids.out, ids.in1, ids.in2])
              await comms!.waitForStatus(id, isConnected, `node ${id} to connect`, 30_000);
            // Both shared subscriptions are made once the in nodes are connected; a moment for the SUBACKs.
            await new Promise((resolve) => setTimeout(resolve, 500));
            assert.equal(
              (await fetch(`${nodeRed!.baseUrl}/inject/${ids.send}`, { method: 'POST' })).status,
              200,
            );
            const jobsAt = (id: string) =>
              comms!
                .debugMessages()
                .filter((m) => m.id === id && m.level === undefined)
                .map((m) => (JSON.parse(m.msg as string) as { job: number }).job);
            await waitFor(
              () => jobsAt(ids.debug1).length + jobsAt(ids.debug2).length >= 10,
              'the 10 jobs at the workers',
              20_000,
            );
            const one = jobsAt(ids.debug1);
            const two = jobsAt(ids.debug2);
            assert.deepEqual(
              [...one, ...two].sort((a, b) => a - b),
              [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
            );
            assert.ok(one.length > 0 && two.length > 0, `split ${one.length}/${two.length}`);
            assert.deepEqual(ourComplaints(flow), []);
          } finally {
            // Stopped first, the workers would log the broker refusing them as errors.
            await fetch(`${nodeRed!.baseUrl}/flows`, {
              method: 'POST',
              headers: { 'Content-Type': 'application/json', 'Node-RED-Deployment-Type': 'full' },
              body: JSON.stringify([]),
            });
            await broker.dispose();
          }
        });
      });

      it('deploys every example at once, each on its own tab as imported: no warning or error from any of our nodes, and the nodes needing a broker of your own connect to nothing', () =>
        showingOutput(async () => {
          // Last but one: the node ids are those of the single-example tests, whose statuses the comms keep.
          const flow: Record<string, unknown>[] = [];
          for (const [index, name] of EXAMPLES.entries()) {
            const example: Record<string, unknown>[] = await (
              await get(`/library/examples/flows/${MODULE}/${name}`)
            ).json();
            const tab = { id: `a0a1c0ffee0001${String(index).padStart(2, '0')}`, type: 'tab', label: name };
            flow.push(
              tab,
              ...example.map((node) => ({
                ...node,
                ...('x' in node ? { z: tab.id } : {}),
                // In-process only: this machine's 1883 may be taken (the editor suite covers that case).
                ...(node.type === 'durable-mqtt-embedded-broker' ? { port: '0' } : {}),
              })),
            );
          }
          const errorsBefore = nodeRed!.logLines('error').length;
          // The node ids are those of the single-example tests: what those logged is theirs.
          const loggedBefore = comms!.debugMessages().length;
          const deployed = await fetch(`${nodeRed!.baseUrl}/flows`, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json', 'Node-RED-Deployment-Type': 'full' },
            body: JSON.stringify(flow),
          });
          assert.ok(deployed.ok, `POST /flows answered ${deployed.status} ${await deployed.text()}`);
          const configs = new Map(
            flow.filter((n) => n.type === 'durable-mqtt-broker-config').map((n) => [n.id, n]),
          );
          const mqttNodes = flow.filter((n) => /^durable-mqtt-(in|out)$/.test(String(n.type)));
          for (const node of mqttNodes) {
            const embedded = configs.get(node.broker)?.transport === 'embedded';
            // Each example on the embedded broker runs as imported; the others wait, disabled, for a broker.
            assert.equal(
              node.d === true,
              !embedded,
              `${String(node.id)}: disabled exactly when it needs a broker of your own`,
            );
            if (embedded)
              await comms!.waitForStatus(
                String(node.id),
                isConnected,
                `${String(node.id)} to connect`,
                30_000,
              );
          }
          // A moment for a connection failure or a warning to surface, had anything tried.
          await new Promise((resolve) => setTimeout(resolve, 2_000));
          assert.deepEqual(ourComplaints(flow, loggedBefore), []);
          assert.deepEqual(nodeRed!.logLines('error').slice(errorsBefore), []);
          await fetch(`${nodeRed!.baseUrl}/flows`, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json', 'Node-RED-Deployment-Type': 'full' },
            body: JSON.stringify([]),
          });
        }));

      it('stops on SIGTERM having logged no error and no load failure', () =>
        showingOutput(async () => {
          comms?.close();
          await nodeRed!.stop(15_000);
          const output = nodeRed!.output;
          assert.match(output, /\[info\] Stopped flows/);
          assert.deepEqual(nodeRed!.logLines('error'), []);
          const lines = output.split('\n');
          assert.deepEqual(
            // A node set that fails to load shows as "[warn] [<module>/<set>] Error: …".
            lines.filter(
              (line) =>
                (/Failed to/.test(line) && /durable-mqtt/.test(line)) ||
                /Waiting for missing types|\[warn\] \[node-red-contrib-durable-mqtt\//.test(line),
            ),
            [],
            'load failures',
          );
          // Every status and log line the nodes showed came from the catalog, none as its key.
          const statuses = comms!.messages
            .filter((m) => m.topic.startsWith('status/'))
            .map((m) => String((m.data as { text?: unknown }).text ?? ''));
          assert.deepEqual(
            [...lines, ...statuses].filter((text) => RAW_KEY.test(text)),
            [],
            'catalog keys shown instead of their texts',
          );
          // Warnings about this package are not failures, but they are worth reading.
          for (const line of nodeRed!.logLines('warn').filter((l) => /durable-mqtt/.test(l)))
            console.log(`# ${line}`);
        }));
    });
  }

  describe('installed from the palette manager into a running Node-RED 4.1, the editor open (Chromium)', () => {
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
      userDir = newUserDirectory(temporaryDirectory('durable-mqtt-palette-'));
      nodeRed = await startNodeRed(repositoryNodeRed(), userDir);
      browser = await chromium.launch({ executablePath: chromiumBinary, args: ['--no-sandbox'] });
      const screenshots = mkdtempSync(path.join(os.tmpdir(), 'durable-mqtt-palette-screenshots-'));
      editor = await Editor.open(browser, nodeRed.baseUrl, screenshots, false);
    });

    after(async () => {
      await browser?.close();
      nodeRed?.kill();
      if (userDir) rmSync(userDir, { recursive: true, force: true });
    });

    it("shows the texts of the package's catalog on the canvas even when the nodes' definitions reach the editor before the catalog", function () {
      this.timeout(600_000);
      return showingOutput(async () => {
        const page = editor.page;
        // A flow imported before the package is there: its out node waits on the canvas as an unknown
        // type, and is drawn anew, with its label, as soon as its type registers.
        const out = 'c0a1c0ffee000001';
        await editor.importNodes([
          {
            id: out,
            type: 'durable-mqtt-out',
            x: 300,
            y: 100,
            // No topic: the label is then a catalog text (the topic comes from msg.topic).
            topic: '',
            persistence: 'queued',
            wires: [],
          },
        ]);
        // The editor fetches the plugin's catalog and the nodes' definitions by separate requests;
        // the catalog is held back here until every definition has come, the order that would show keys.
        const definitions = new RegExp(`/nodes/${MODULE}/(${TYPES.join('|')})$`);
        let definitionsServed = 0;
        page.on('response', (response) => {
          if (definitions.test(new URL(response.url()).pathname)) definitionsServed++;
        });
        let catalogRequests = 0;
        await page.route(`**/nodes/${CATALOG_NAMESPACE}/messages?*`, async (route) => {
          catalogRequests++;
          await waitFor(() => definitionsServed === TYPES.length, 'the definitions of every node', 300_000);
          await route.continue();
        });
        const installed = await fetch(`${nodeRed!.baseUrl}/nodes`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ module: MODULE, url: tarball }),
        });
        assert.equal(
          installed.status,
          200,
          `POST /nodes answered ${installed.status} ${await installed.text()}`,
        );
        await waitFor(() => definitionsServed === TYPES.length, 'the definitions of every node', 60_000);
        await editor.paletteNode('durable-mqtt-out').waitFor();
        assert.ok(catalogRequests > 0, 'the catalog fetched after the definitions');
        const label = editor.canvasNode(out).locator('.red-ui-flow-node-label');
        await editor.waitForNodeType(out, 'durable-mqtt-out');
        assert.equal(await label.textContent(), englishCatalog.canvas['msg-topic']);
        await editor.screenshot('installed-from-palette');
      });
    });
  });
});
