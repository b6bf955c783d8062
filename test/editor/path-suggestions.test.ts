import { strict as assert } from 'node:assert';
import { Lwm2mClient } from '../../lib/client';
import { ObjectModel } from '../../lib/model/object-model';
import { resetDeviceBrowser } from '../../nodes/shared/admin-api';
import { MAX_SUGGESTIONS, suggestPaths } from '../../nodes/shared/path-suggestions';
import type { Lwm2mServerConfigNode } from '../../nodes/shared/server-config';
import { resetHosts } from '../../nodes/shared/server-host';
import { helper } from '../nodes/helper';

const model = ObjectModel.withBuiltins();
const paths = (typed: string, device?: Parameters<typeof suggestPaths>[2]) =>
  suggestPaths(model, typed, device).map((suggestion) => `${suggestion.path} ${suggestion.name}`);

describe('path suggestions for the editor (nodes/shared/path-suggestions.ts)', function () {
  it('continues an object id, or finds objects by name', function () {
    assert.ok(paths('/33').includes('/3303 Temperature'));
    assert.ok(paths('/33').every((line) => line.startsWith('/33')));
    assert.deepEqual(paths('/3303'), ['/3303 Temperature']);
    assert.deepEqual(paths('temp'), ['/3303 Temperature']);
    assert.deepEqual(paths('/Temp'), ['/3303 Temperature']);
    assert.equal(paths('/').length, Math.min(model.objectIds().length, MAX_SUGGESTIONS));
    assert.deepEqual(paths('/99999'), []);
  });

  it('lists instances, then resources by name, under an object; resources with their operations', function () {
    const underObject = paths('/3303/');
    assert.equal(underObject[0], '/3303/0 instance 0');
    assert.ok(underObject.includes('/3303/0/5700 Sensor Value'));
    assert.deepEqual(paths('/3303/sens'), ['/3303/0/5700 Sensor Value', '/3303/0/5701 Sensor Units']);
    assert.deepEqual(paths('/3303/0'), ['/3303/0 instance 0']);
    assert.deepEqual(paths('/3303/0/570'), ['/3303/0/5700 Sensor Value', '/3303/0/5701 Sensor Units']);
    const reboot = suggestPaths(model, '/3/0/4')[0];
    assert.deepEqual(reboot, { path: '/3/0/4', level: 3, name: 'Reboot', operations: 'E', multiple: false });
    // Resource instances are not in the model; a path that is not ids gives nothing.
    assert.deepEqual(paths('/3/0/7/'), []);
    assert.deepEqual(paths('/3/x/'), []);
  });

  it("puts a device's objects first and offers its instances", function () {
    const device = { 3303: { instances: [0, 2] }, 3: { instances: [0] }, 4242: { instances: [1] } };
    const objects = suggestPaths(model, '/', device);
    assert.deepEqual(
      objects.slice(0, 3).map((suggestion) => [suggestion.path, suggestion.onDevice]),
      [
        ['/3', true],
        ['/3303', true],
        ['/4242', true],
      ],
    );
    assert.equal(objects[2].name, 'Object 4242', 'an object the model does not know is named by its id');
    assert.deepEqual(
      suggestPaths(model, '/3303/', device)
        .filter((suggestion) => suggestion.level === 2)
        .map((suggestion) => suggestion.path),
      ['/3303/0', '/3303/2'],
    );
    assert.deepEqual(paths('/3303/2', device), ['/3303/2 instance 2']);
    assert.deepEqual(paths('/3303/sensor v', device), ['/3303/0/5700 Sensor Value']);
  });
});

describe('GET lwm2m/paths (the path fields’ autocomplete, through node-red-node-test-helper)', function () {
  this.timeout(20000);
  let device: Lwm2mClient | undefined;
  const api = () => helper.request();

  beforeEach(async function () {
    await helper.load(
      [
        require('../../nodes/plugins/lwm2m-device-browser'),
        require('../../nodes/lwm2m-server'),
        require('../../nodes/lwm2m-register-in'),
      ],
      [
        { id: 'f1', type: 'tab', label: 'paths' },
        { id: 'srv', type: 'lwm2m-server', address: '127.0.0.1', port: '0', dtlsEnabled: false },
        { id: 'reg', type: 'lwm2m-register-in', z: 'f1', server: 'srv', wires: [[]] },
      ],
    );
  });

  afterEach(async function () {
    await device?.stop({ timeoutMs: 500 }).catch(() => undefined);
    device = undefined;
    await helper.unload();
    resetDeviceBrowser();
    await resetHosts();
  });

  it('answers from the built-in model without a deployed server, and from the device when one is named', async function () {
    const builtin = await api().get('/lwm2m/paths').query({ path: '/33', server: 'not-deployed' }).expect(200);
    assert.equal(builtin.body.model, 'builtin');
    assert.equal(builtin.body.device, false);
    assert.ok(
      (builtin.body.suggestions as { path: string; name: string }[]).some(
        (suggestion) => suggestion.path === '/3303' && suggestion.name === 'Temperature',
      ),
    );

    const config = helper.getNode('srv') as unknown as Lwm2mServerConfigNode;
    await config.ready();
    device = new Lwm2mClient({
      endpointName: 'paths-dev',
      serverUri: `coap://127.0.0.1:${config.server.address!.port}`,
      lifetime: 60,
      objects: [3303],
    });
    await device.start();
    const fromDevice = await api()
      .get('/lwm2m/paths')
      .query({ path: '/', server: 'srv', endpoint: 'paths-dev' })
      .expect(200);
    assert.equal(fromDevice.body.model, 'server');
    assert.equal(fromDevice.body.device, true);
    const first = (fromDevice.body.suggestions as { path: string; onDevice?: boolean }[]).filter((s) => s.onDevice);
    const registered = Object.keys((await config.server.getRegistration('paths-dev'))!.objects)
      .map(Number)
      .sort((a, b) => a - b)
      .map((id) => `/${id}`);
    assert.deepEqual(
      first.map((suggestion) => suggestion.path),
      registered,
    );
    assert.ok(first.some((suggestion) => suggestion.path === '/3303'));

    // Not registered: the model's paths all the same.
    const unknown = await api().get('/lwm2m/paths').query({ path: '/3303/', server: 'srv', endpoint: 'nobody' });
    assert.equal(unknown.body.device, false);
    assert.equal(unknown.body.suggestions[0].path, '/3303/0');
    // A query the route cannot use (an array instead of text) is taken as nothing typed.
    const odd = await api().get('/lwm2m/paths?path[]=x&server=srv').expect(200);
    assert.ok(odd.body.suggestions.length > 0);
  });
});
