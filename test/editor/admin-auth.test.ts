import { strict as assert } from 'node:assert';
import { Lwm2mClient } from '../../lib/client';
import { startNodeRed, waitFor } from './node-red-process';
import type { NodeRedProcess } from './node-red-process';

/**
 * The admin API in a real Node-RED with adminAuth (the test helper stubs permissions): nothing without a token,
 * `lwm2m.read` to look and Read, `lwm2m.write` to act, as Node-RED's scopes grant them.
 */
describe('device browser admin API behind Node-RED adminAuth (real Node-RED process)', function () {
  this.timeout(40000);
  let red: NodeRedProcess | undefined;
  let device: Lwm2mClient | undefined;

  before(async function () {
    red = await startNodeRed([
      { id: 'f1', type: 'tab', label: 'auth' },
      { id: 'srv', type: 'lwm2m-server', address: '127.0.0.1', port: '0', dtlsEnabled: false },
      { id: 'reg', type: 'lwm2m-register-in', z: 'f1', server: 'srv', x: 120, y: 80, wires: [[]] },
    ]);
  });

  after(async function () {
    await device?.stop({ timeoutMs: 500 }).catch(() => undefined);
    await red?.stop();
  });

  it('loads the plugin: the editor gets the sidebar script', async function () {
    const token = await red!.token('admin');
    const list = await red!.call('GET', '/plugins', token);
    assert.equal(list.status, 200);
    const sets = list.body as { id: string; plugins: { id: string }[] }[];
    assert.ok(
      sets.some((set) => set.plugins.some((plugin) => plugin.id === 'lwm2m-device-browser')),
      JSON.stringify(sets),
    );
    const html = await fetch(`${red!.url}/plugins`, {
      headers: { Accept: 'text/html', Authorization: `Bearer ${token}` },
    });
    assert.match(await html.text(), /RED\.sidebar\.addTab/);
  });

  it('refuses every route without a token, and to a user without lwm2m permissions', async function () {
    for (const [method, path] of [
      ['GET', '/lwm2m/servers'],
      ['GET', '/lwm2m/servers/srv/devices'],
      ['GET', '/lwm2m/servers/srv/devices/any'],
      ['POST', '/lwm2m/servers/srv/devices/any/read'],
      ['POST', '/lwm2m/servers/srv/devices/any/write'],
      ['POST', '/lwm2m/servers/srv/devices/any/watch'],
      ['GET', '/lwm2m/paths?path=/33&server=srv'],
    ]) {
      const answer = await red!.call(method, path, undefined, method === 'POST' ? { path: '/3/0' } : undefined);
      assert.equal(answer.status, 401, `${method} ${path} without a token`);
    }
    const flowsOnly = await red!.token('flows-only');
    assert.equal((await red!.call('GET', '/lwm2m/servers', flowsOnly)).status, 401);
    assert.equal((await red!.call('GET', '/lwm2m/paths?path=/33', flowsOnly)).status, 401);
  });

  it('lets lwm2m.read look and Read, and only lwm2m.write Write', async function () {
    const admin = await red!.token('admin');
    const servers = await waitFor('the server listening', async () => {
      const answer = await red!.call('GET', '/lwm2m/servers', admin);
      const found = (answer.body as { servers: { id: string; port?: number }[] }).servers.find((s) => s.id === 'srv');
      return found?.port ? found : undefined;
    });
    device = new Lwm2mClient({
      endpointName: 'auth-dev',
      serverUri: `coap://127.0.0.1:${servers.port}`,
      lifetime: 60,
      objects: [3303],
    });
    await device.start();

    // 'read' scope: every *.read permission, lwm2m.read among them.
    const viewer = await red!.token('viewer');
    const list = await red!.call('GET', '/lwm2m/servers/srv/devices', viewer);
    assert.equal(list.status, 200);
    assert.deepEqual(
      (list.body as { devices: { endpoint: string }[] }).devices.map((d) => d.endpoint),
      ['auth-dev'],
    );
    const read = await red!.call('POST', '/lwm2m/servers/srv/devices/auth-dev/read', viewer, { path: '/3/0/0' });
    assert.equal(read.status, 200);
    const write = { path: '/3/0/14', value: '+01:00' };
    assert.equal((await red!.call('POST', '/lwm2m/servers/srv/devices/auth-dev/write', viewer, write)).status, 401);
    assert.equal(
      (await red!.call('POST', '/lwm2m/servers/srv/devices/auth-dev/observe', viewer, { path: '/3/0/13' })).status,
      401,
    );

    // 'write' scope: Node-RED grants *.write only (permissions.js), so lwm2m.write but not lwm2m.read.
    const writer = await red!.token('writer');
    assert.equal((await red!.call('GET', '/lwm2m/servers', writer)).status, 401);
    assert.equal((await red!.call('POST', '/lwm2m/servers/srv/devices/auth-dev/write', writer, write)).status, 200);
    assert.equal(device.get('/3/0/14'), '+01:00');

    // '*': everything.
    const written = await red!.call('POST', '/lwm2m/servers/srv/devices/auth-dev/write', admin, {
      path: '/3/0/14',
      value: '+03:00',
    });
    assert.equal(written.status, 200);
    assert.equal(device.get('/3/0/14'), '+03:00');
    const failed = await red!.call('POST', '/lwm2m/servers/srv/devices/auth-dev/read', admin, { path: '/3303/5' });
    assert.equal(failed.status, 502);
    assert.equal((failed.body as { code: string }).code, '4.04');
  });
});
