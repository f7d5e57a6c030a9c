import type { Node, NodeAPI, NodeDef } from 'node-red';
import type { Server as HttpServer } from 'node:http';
import path from 'node:path';
import { EmbeddedBroker } from './lib/aedes-adapter.js';
import { embeddedBrokers } from './lib/embedded-registry.js';
import { readNumber, readString } from './shared/config-values.js';
import type { BrokerCredentials } from './broker-config.js';

interface EmbeddedBrokerDef extends NodeDef {
  port: string | number;
  bind: string;
  wsPath: string;
  /** 'disk' keeps retained messages and persistent sessions across restarts. */
  persistence?: 'memory' | 'disk';
}

module.exports = function (RED: NodeAPI) {
  function EmbeddedBrokerNode(this: Node<BrokerCredentials>, def: EmbeddedBrokerDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    // The flow contract: 0 or an empty field means no TCP listener; a missing property takes the default.
    const port = def.port === undefined ? 1883 : readNumber(def.port, 0);
    const bind = readString(def.bind).trim() || '127.0.0.1';
    const wsPath = readString(def.wsPath).trim();
    const httpRoot = (RED.settings.httpNodeRoot as string | false | undefined) || '/';
    const userDir = RED.settings.userDir as string | undefined;
    const persistenceDirectory =
      def.persistence === 'disk' && userDir
        ? path.join(userDir, 'durable-mqtt', 'broker', node.id)
        : undefined;
    if (def.persistence === 'disk' && !userDir) node.error(RED._('durable-mqtt.errors.no-user-dir'));
    const broker = new EmbeddedBroker({
      port,
      bind,
      wsPath: wsPath ? `${httpRoot.replace(/\/$/, '')}/${wsPath.replace(/^\//, '')}` : undefined,
      httpServer: RED.server as unknown as HttpServer,
      username: node.credentials?.user || undefined,
      password: node.credentials?.password || undefined,
      persistenceDirectory,
    });
    let listenError: string | undefined;

    const showStatus = () => {
      if (listenError) return node.status({ fill: 'red', shape: 'ring', text: listenError });
      const clients = RED._('durable-mqtt.status.clients', { count: broker.clientCount });
      const where = broker.listeningAddress
        ? `${broker.listeningAddress.address}:${broker.listeningAddress.port}`
        : RED._('durable-mqtt.status.in-process-only');
      node.status({ fill: 'green', shape: 'dot', text: `${where} · ${clients}` });
    };
    broker.on('clients', showStatus);

    const started = broker.start().then(
      () => {
        if (broker.listeningAddress) {
          node.log(
            RED._('durable-mqtt.log.listening', {
              address: `${broker.listeningAddress.address}:${broker.listeningAddress.port}`,
            }),
          );
        }
      },
      (error: NodeJS.ErrnoException) => {
        listenError =
          error.code === 'EADDRINUSE'
            ? RED._('durable-mqtt.errors.port-in-use', { port, bind })
            : error.code === 'EACCES'
              ? RED._('durable-mqtt.errors.port-denied', { port, bind })
              : RED._('durable-mqtt.errors.broker-start-failed', { reason: error.message });
        node.error(listenError);
      },
    );
    // In-process clients can use the broker even when its TCP listener failed.
    started.then(() => {
      embeddedBrokers.register(node.id, broker);
      showStatus();
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      embeddedBrokers.unregister(node.id, broker);
      broker.off('clients', showStatus);
      started
        .then(() => broker.close())
        .then(done, (error: Error) => {
          node.error(error.message);
          done();
        });
    });
  }

  RED.nodes.registerType<Node<BrokerCredentials>, EmbeddedBrokerDef, unknown, BrokerCredentials>(
    'durable-mqtt-embedded-broker',
    EmbeddedBrokerNode,
    {
      credentials: { user: { type: 'text' }, password: { type: 'password' } },
    },
  );
};
