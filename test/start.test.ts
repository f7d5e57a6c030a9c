import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'mocha';
import { englishCatalog, HELLO, helloWorldExample, isConnected } from './support/hello-world.js';
import { CommsObserver, NodeRedProcess, temporaryDirectory } from './support/node-red-process.js';
import { freePort } from './support/ports.js';
import { copyWorkingTree } from './support/working-copy.js';
import { waitFor } from './support/wait.js';
import { showingOutputOnFailure } from './support/failure-output.js';

const { broker: BROKER, inject: INJECT, out: OUT, in: IN, debug: DEBUG } = HELLO;
const OUR_NODES = new Set(
  helloWorldExample.filter((n) => n.type.startsWith('durable-mqtt-')).map((n) => n.id),
);

/** The embedded broker's red status when something else (a developer's Mosquitto…) holds 1883. */
const PORT_IN_USE: string = englishCatalog.errors['port-in-use']
  .replace('__port__', '1883')
  .replace('__bind__', '127.0.0.1');

describe('npm start serves the hello-world flow end to end', () => {
  let userDir: string;
  let copy: string | undefined;
  let nodeRed: NodeRedProcess;
  let comms: CommsObserver | undefined;
  /** Runs a test step; on its first failure prints what npm start printed. */
  const showingOutput = showingOutputOnFailure(
    () => `--- npm start output ---\n${nodeRed?.output}\n--- end of npm start output ---`,
  );

  before(function () {
    this.timeout(120_000);
    return showingOutput(async () => {
      // A fresh user directory and a free port: the developer's .node-red and port 1880 stay untouched.
      userDir = temporaryDirectory('durable-mqtt-start-');
      // npm start builds, which rewrites dist/: in a copy, so that test files running alongside keep theirs.
      copy = copyWorkingTree(temporaryDirectory('durable-mqtt-start-copy-'));
      const port = await freePort();
      nodeRed = new NodeRedProcess(`http://127.0.0.1:${port}`, 'npm', ['start'], {
        cwd: copy,
        env: { ...process.env, PORT: String(port), NODE_RED_USER_DIR: userDir },
      });
      // npm start builds first (5–10 s, more on a loaded machine), then starts Node-RED.
      await nodeRed.waitUntilServing('/flows', 90_000);
      // Subscribed as the editor is: the debug sidebar, and the node statuses (retained: current ones come at once).
      comms = await CommsObserver.open(nodeRed.baseUrl, ['debug', 'status/#']);
    });
  });

  after(() => {
    comms?.close();
    nodeRed?.kill();
    if (userDir) rmSync(userDir, { recursive: true, force: true });
    if (copy) rmSync(copy, { recursive: true, force: true });
  });

  it('serves the deployed hello-world example, with its durable-mqtt nodes, through the admin API', () =>
    showingOutput(async () => {
      const response = await fetch(`${nodeRed.baseUrl}/flows`);
      assert.equal(response.status, 200);
      const flows: { id: string; type: string; z?: string; x?: number }[] = await response.json();
      const nodesOf = (list: { id: string; type: string }[]) =>
        list.map(({ id, type }) => `${id} ${type}`).sort();
      assert.deepEqual(nodesOf(flows.filter((n) => n.type !== 'tab')), nodesOf(helloWorldExample));
      // The runtime starts only the canvas nodes that name an existing tab (z).
      const tabs = new Set(flows.filter((n) => n.type === 'tab').map((n) => n.id));
      const offTab = flows.filter((n) => n.x !== undefined && !tabs.has(n.z ?? ''));
      assert.deepEqual(offTab, [], 'every canvas node is on a tab');
      assert.deepEqual(
        [...new Set(flows.map((n) => n.type).filter((type) => type.startsWith('durable-mqtt-')))].sort(),
        ['durable-mqtt-broker-config', 'durable-mqtt-embedded-broker', 'durable-mqtt-in', 'durable-mqtt-out'],
      );
    }));

  it('connects the mqtt out and in nodes in-process, whether or not 127.0.0.1:1883 is free', () =>
    showingOutput(async () => {
      await comms!.waitForStatus(OUT, isConnected, 'the mqtt out node to show "connected"', 30_000);
      await comms!.waitForStatus(IN, isConnected, 'the mqtt in node to show "connected"', 30_000);
      const broker = await comms!.waitForStatus(
        BROKER,
        (status) => status.fill !== undefined,
        'a status on the embedded broker',
        30_000,
      );
      if (broker.fill === 'red') {
        // Another broker holds 1883: the node must say so, and still serve the flow in-process.
        assert.equal(broker.text, PORT_IN_USE);
        console.log('# 127.0.0.1:1883 is in use: the embedded broker runs in-process only');
      } else {
        assert.equal(broker.fill, 'green');
        assert.match(broker.text ?? '', /^127\.0\.0\.1:1883 · /);
      }
    }));

  it('delivers the injected message to the debug sidebar: inject → mqtt out → embedded broker → mqtt in → debug', () =>
    showingOutput(async () => {
      await comms!.waitForStatus(OUT, isConnected, 'the mqtt out node to connect', 30_000);
      await comms!.waitForStatus(IN, isConnected, 'the mqtt in node to connect', 30_000);
      // The inject button of the editor.
      const injected = await fetch(`${nodeRed.baseUrl}/inject/${INJECT}`, { method: 'POST' });
      assert.equal(injected.status, 200);
      const fromDebugNode = () => comms!.debugMessages().filter((m) => m.id === DEBUG);
      await waitFor(() => fromDebugNode().length > 0, 'the message in the debug sidebar', 20_000);
      const [entry] = fromDebugNode();
      assert.equal(entry.topic, 'hello/world');
      assert.equal(entry.format, 'Object');
      const msg = JSON.parse(entry.msg as string);
      assert.equal(msg.topic, 'hello/world');
      assert.equal(msg.payload, 'Hello from durable mqtt');
      assert.equal(msg.qos, 1);
      assert.equal(msg.retain, false);
      // Warnings and errors that nodes log reach the sidebar too: ours logged none (bar a busy 1883).
      const logged = comms!
        .debugMessages()
        .filter((m) => m.level !== undefined && OUR_NODES.has(m.id))
        .filter((m) => !(m.id === BROKER && m.msg === PORT_IN_USE));
      assert.deepEqual(logged, []);
    }));

  it('stops the whole process group within 10 s of SIGTERM, stopping the flows first', () =>
    showingOutput(async () => {
      comms?.close();
      const exit = await nodeRed.stop(10_000);
      console.log(`# npm start exited with code ${exit.code}, signal ${exit.signal}`);
      assert.match(nodeRed.output, /\[info\] Stopped flows/);
      await assert.rejects(fetch(`${nodeRed.baseUrl}/flows`), 'nothing listens on the port any more');
      const errors = nodeRed.logLines('error').filter((line) => !line.includes(PORT_IN_USE));
      assert.deepEqual(errors, []);
    }));
});
