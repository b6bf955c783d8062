import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import path from 'node:path';
import { resetBootstrapHosts } from '../../nodes/shared/bootstrap-host';
import { resetHosts } from '../../nodes/shared/server-host';
import { helper } from './helper';

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
      const flow = JSON.parse(fs.readFileSync(path.join(examplesDir, file), 'utf8')) as Record<string, unknown>[];
      // Any free port instead of 5683, and simulated devices pointed nowhere: this checks the flow, not a device.
      for (const node of flow) {
        if (node.type === 'lwm2m-server' || node.type === 'lwm2m-bootstrap')
          Object.assign(node, { port: 0, securePort: 0, address: '127.0.0.1' });
        if (node.type === 'lwm2m-device') node.serverUri = 'coap://127.0.0.1:9';
      }
      await helper.load(allNodes, flow);
      for (const node of flow) {
        if (node.type === 'tab') continue;
        assert.ok(helper.getNode(node.id as string), `${file}: ${node.type} ${node.id} was created`);
      }
    });
  }
});
