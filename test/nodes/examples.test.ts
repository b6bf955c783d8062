import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import path from 'node:path';
import { Lwm2mClient } from '../../lib/client';
import type { Lwm2mServerConfigNode } from '../../nodes/shared/server-config';
import { resetBootstrapHosts } from '../../nodes/shared/bootstrap-host';
import { resetHosts } from '../../nodes/shared/server-host';
import { FAST_COAP } from '../client/helpers';
import { helper, nextMessage, until } from './helper';

const root = path.resolve(__dirname, '..', '..', '..');
const examplesDir = path.join(root, 'examples');
const core = (file: string) => require(path.join(root, 'node_modules/@node-red/nodes/core', file));
const coreNodes = [
  core('common/20-inject.js'),
  core('common/21-debug.js'),
  core('common/25-catch.js'),
  core('common/90-comment.js'),
  core('function/10-function.js'),
  core('function/10-switch.js'),
  core('function/15-change.js'),
];
// Every node the package declares, loaded from where package.json says Node-RED finds it.
const declared = require(path.join(root, 'package.json'))['node-red'].nodes as Record<string, string>;
const allNodes = [...Object.values(declared).map((file) => require(path.join(root, file))), ...coreNodes];

/** An example flow with its server and bootstrap nodes on 127.0.0.1, any free port (not 5683). */
function exampleFlow(file: string): Record<string, unknown>[] {
  const flow = JSON.parse(fs.readFileSync(path.join(examplesDir, file), 'utf8')) as Record<string, unknown>[];
  for (const node of flow) {
    if (node.type === 'lwm2m-server' || node.type === 'lwm2m-bootstrap')
      Object.assign(node, { port: 0, securePort: 0, address: '127.0.0.1' });
  }
  return flow;
}

describe('example flows', function () {
  afterEach(async function () {
    await helper.unload();
    await resetHosts();
    await resetBootstrapHosts();
  });

  const files = fs.readdirSync(examplesDir).filter((file) => file.endsWith('.json'));
  it('has one example per palette node at least', function () {
    const types = new Set(
      files.flatMap((file) =>
        (JSON.parse(fs.readFileSync(path.join(examplesDir, file), 'utf8')) as { type: string }[]).map((n) => n.type),
      ),
    );
    const ours = Object.keys(require(path.join(root, 'package.json'))['node-red'].nodes as Record<string, string>);
    for (const type of ours) assert.ok(types.has(type), `an example uses ${type}`);
  });

  for (const file of files) {
    it(`${file} deploys with every node created`, async function () {
      const flow = exampleFlow(file);
      // Simulated devices pointed nowhere: this checks the flow, not a device.
      for (const node of flow) if (node.type === 'lwm2m-device') node.serverUri = 'coap://127.0.0.1:9';
      await helper.load(allNodes, flow);
      for (const node of flow) {
        if (node.type === 'tab') continue;
        assert.ok(helper.getNode(node.id as string), `${file}: ${node.type} ${node.id} was created`);
      }
    });
  }
});

function nodeNamed(flow: Record<string, unknown>[], type: string, name: string): Record<string, unknown> {
  const found = flow.find((node) => node.type === type && node.name === name);
  assert.ok(found, `the flow has the ${type} "${name}"`);
  return found;
}

describe('example flows with simulated devices', function () {
  const devices: Lwm2mClient[] = [];

  afterEach(async function () {
    for (const device of devices.splice(0)) await device.stop({ timeoutMs: 1000 });
    await helper.unload();
    await resetHosts();
  });

  /** A simulated device (as lwm2m-sim makes them) registered with the flow's server. */
  async function simulatedDevice(endpointName: string, objects: number[], before?: (client: Lwm2mClient) => void) {
    const config = helper.getNode('1822a097b9713665') as unknown as Lwm2mServerConfigNode;
    await config.ready();
    const client = new Lwm2mClient({
      endpointName,
      serverUri: `coap://127.0.0.1:${config.server.address!.port}`,
      bindAddress: '127.0.0.1',
      objects,
      coap: FAST_COAP,
    });
    devices.push(client);
    before?.(client);
    await client.start();
    return { client, server: config.server };
  }

  it('getting-started.json: a temperature per line, "topic: value unit", notified at most every 10 s, at least every 60 s', async function () {
    const flow = exampleFlow('getting-started.json');
    const observe = nodeNamed(flow, 'lwm2m-observe', 'temperature of every device');
    assert.deepEqual([observe.path, observe.pmin, observe.pmax], ['/3303/0', '10', '60']);
    await helper.load(allNodes, flow);
    const shown = nextMessage(helper.getNode(nodeNamed(flow, 'debug', 'temperatures').id as string), 15_000);
    const { server } = await simulatedDevice('dev-1', [3303]);
    const line = (await shown).payload;
    assert.match(String(line), /^dev-1\/3303\/0: -?\d+(?:\.\d+)? Cel \(Room temperature\)$/);
    // The attributes went to the device before the Observe.
    const discovered = await server.discover('dev-1', '/3303/0');
    const instance = discovered.links.find((link) => link.uri === '/3303/0');
    assert.deepEqual([instance?.params.pmin, instance?.params.pmax], ['10', '60']);
  });

  it('getting-started.json: the top comment says where the device browser is', function () {
    const flow = exampleFlow('getting-started.json');
    const top = flow.find((node) => node.id === 'd13f9debfbca276b')!;
    assert.match(String(top.info), /LwM2M devices/);
    assert.match(String(top.info), /drop-down menu/);
  });

  it('smart-agriculture-irrigation.json: simulated field devices are soil moisture sensors, and dry soil opens the valve', async function () {
    const flow = exampleFlow('smart-agriculture-irrigation.json');
    await helper.load(allNodes, flow);
    const check = helper.getNode(nodeNamed(flow, 'function', 'soil moisture sensor?').id as string);
    const warnings: string[] = [];
    check.on('call:warn', (call: { args: unknown[] }) => warnings.push(String(call.args[0])));
    const types = nextMessage(helper.getNode(nodeNamed(flow, 'debug', 'sensor types').id as string), 15_000);
    // Dry soil (below OPEN_BELOW, 30 %) when the observation starts: the flow opens the valve.
    const { client } = await simulatedDevice('field-1', [3304, 3425], (device) => device.set('/3304/0/5700', 25));
    assert.equal((await types).payload, 'field-1: Soil moisture');
    await until(() => client.get('/3425/0/2') === 100, 'the valve of field-1 to open');
    assert.deepEqual(warnings, [], 'no "not a soil moisture sensor"');
  });
});
