import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import {
  InvalidPropertySettingError,
  nodePublishProperties,
  publishProperties,
} from '../nodes/node-red/mqtt5-properties.js';
import {
  InvalidSubscriptionOptionError,
  readSubscriptionOptions,
} from '../nodes/node-red/subscription-options.js';

// The MQTT 5 settings of the in and out nodes, read as the core mqtt nodes store them.
describe('MQTT 5 settings of the in and out nodes', () => {
  it('reads the out node’s properties, empty ones as none', () => {
    assert.equal(
      nodePublishProperties({ contentType: '', respTopic: ' ', correl: '', userProps: '', expiry: '' }),
      undefined,
    );
    const properties = nodePublishProperties({ correl: 'c', userProps: '{"n":1,"l":["a",2]}', expiry: 0 });
    assert.deepEqual(properties, {
      correlationData: Buffer.from('c'),
      messageExpiryInterval: 0,
      userProperties: { n: '1', l: ['a', '2'] },
    });
  });

  it('names the out node setting that cannot be sent', () => {
    const settingOf = (settings: Parameters<typeof nodePublishProperties>[0]) => {
      try {
        nodePublishProperties(settings);
      } catch (error) {
        assert.ok(error instanceof InvalidPropertySettingError);
        return error.setting;
      }
      return undefined;
    };
    assert.equal(settingOf({ respTopic: 'replies/#' }), 'respTopic');
    assert.equal(settingOf({ expiry: '1.5' }), 'expiry');
    assert.equal(settingOf({ userProps: '[1]' }), 'userProps');
    assert.equal(settingOf({ userProps: '{' }), 'userProps');
  });

  it('lets a property set on the node win over the msg’s, and leaves the msg’s others, as the core node', () => {
    const node = nodePublishProperties({ contentType: 'text/plain', userProps: '{"a":"node"}' });
    const properties = publishProperties(
      // The msg's content type is not even checked: the node's is sent.
      { contentType: 42, userProperties: { b: 'msg' }, responseTopic: 'r' },
      node,
    );
    assert.deepEqual(properties, {
      contentType: 'text/plain',
      userProperties: { a: 'node' },
      responseTopic: 'r',
    });
    assert.notEqual(publishProperties({}, node), node, 'a copy per message');
  });

  it('reads No Local, Retain As Published and Retain Handling as the core in node does, with fallbacks', () => {
    assert.deepEqual(readSubscriptionOptions({}), { nl: false, rap: false, rh: 0 });
    assert.deepEqual(readSubscriptionOptions({ nl: 'true', rap: true, rh: '2' }), {
      nl: true,
      rap: true,
      rh: 2,
    });
    assert.deepEqual(readSubscriptionOptions({ rh: 1 }, { nl: true, rap: true, rh: 0 }), {
      nl: true,
      rap: true,
      rh: 1,
    });
    for (const bad of [{ nl: 'yes' }, { rap: 1 }, { rh: 3 }, { rh: 'one' }]) {
      assert.throws(() => readSubscriptionOptions(bad), InvalidSubscriptionOptionError, JSON.stringify(bad));
    }
  });
});
