import { strict as assert } from 'node:assert';
import { Lwm2mClient } from '../../lib/client';
import type { Lwm2mServerConfigNode } from '../../nodes/shared/server-config';
import { resetHosts } from '../../nodes/shared/server-host';
import { FAST_COAP } from '../client/helpers';
import { firmwarePackage } from '../firmware/helpers';
import { helper, nextError, ourNodes, until } from './helper';

const nodes = [...ourNodes, require('../../nodes/lwm2m-firmware-update')];
type Msg = Record<string, unknown>;

describe('lwm2m-firmware-update node', function () {
  const clients: Lwm2mClient[] = [];

  afterEach(async function () {
    for (const client of clients.splice(0)) await client.stop({ timeoutMs: 300 }).catch(() => undefined);
    await helper.unload();
    await resetHosts();
  });

  async function setUp(node: Msg): Promise<{ progress: Msg[]; results: Msg[]; port: number }> {
    await helper.load(nodes, [
      { id: 'f1', type: 'tab', label: 'test' },
      { id: 'srv', type: 'lwm2m-server', address: '127.0.0.1', port: '0', ackTimeout: '100', maxRetransmit: '2' },
      { id: 'fw', z: 'f1', type: 'lwm2m-firmware-update', server: 'srv', wires: [['progress'], ['results']], ...node },
      { id: 'progress', z: 'f1', type: 'helper' },
      { id: 'results', z: 'f1', type: 'helper' },
    ]);
    const progress: Msg[] = [];
    const results: Msg[] = [];
    helper.getNode('progress').on('input', (msg: Msg) => progress.push(msg));
    helper.getNode('results').on('input', (msg: Msg) => results.push(msg));
    const config = helper.getNode('srv') as unknown as Lwm2mServerConfigNode;
    await config.ready();
    return { progress, results, port: config.server.address!.port };
  }

  async function device(
    port: number,
    endpointName: string,
    firmware: Record<string, unknown> = {},
  ): Promise<Lwm2mClient> {
    const client = new Lwm2mClient({
      endpointName,
      serverUri: `coap://127.0.0.1:${port}`,
      objects: [5],
      firmware: { updateDelayMs: 20, downloadTimeoutMs: 3000, ...firmware },
      coap: FAST_COAP,
      rebootDelayMs: 50,
    });
    clients.push(client);
    await client.start();
    return client;
  }

  it('updates the devices a pattern matches: progress, a result each (one fails with its cause), a summary', async function () {
    const { progress, results, port } = await setUp({ endpoint: 'valve-*', expectedVersion: '2.0.0', retries: '0' });
    const good = await device(port, 'valve-1');
    await device(port, 'valve-2', { failure: 'integrity' });
    await device(port, 'pump-1');
    helper.getNode('fw').receive({ payload: firmwarePackage('2.0.0') });
    await until(() => results.some((msg) => msg.topic === 'summary'));
    const byDevice = Object.fromEntries(
      results.filter((msg) => msg.topic !== 'summary').map((msg) => [msg.topic, msg.payload as Msg]),
    );
    assert.deepEqual(Object.keys(byDevice).sort(), ['valve-1', 'valve-2']);
    assert.equal(byDevice['valve-1'].ok, true);
    assert.equal(byDevice['valve-1'].firmwareVersion, '2.0.0');
    assert.equal(byDevice['valve-2'].ok, false);
    assert.equal(byDevice['valve-2'].cause, 'integrity-failure');
    const summary = results.find((msg) => msg.topic === 'summary')!.payload as Msg;
    assert.equal(summary.total, 2);
    assert.equal(summary.succeeded, 1);
    assert.deepEqual(summary.byCause, { 'integrity-failure': 1 });
    assert.ok(progress.some((msg) => (msg.payload as Msg).state === 'updating'));
    assert.equal(good.get('/3/0/3'), '2.0.0');
  });

  it('pull over HTTP: the device fetches the image from this Node-RED and runs it', async function () {
    const { results, port } = await setUp({ endpoint: 'tank-1', method: 'pull-http', expectedVersion: '3.1.0' });
    const tank = await device(port, 'tank-1');
    helper.getNode('fw').receive({ payload: firmwarePackage('3.1.0') });
    await until(() => results.some((msg) => msg.topic === 'summary'));
    const outcome = results.find((msg) => msg.topic === 'tank-1')!.payload as Msg;
    assert.equal(outcome.ok, true);
    assert.equal(outcome.method, 'pull');
    assert.match(String(tank.get('/5/0/1')), /^http:\/\/127\.0\.0\.1:\d+\/fw\/[0-9a-f]{32}$/);
    assert.equal(tank.get('/3/0/3'), '3.1.0');
  });

  it('bad input goes to Catch: no image, no device, nothing to cancel', async function () {
    await setUp({});
    const fw = helper.getNode('fw');
    let failed = nextError(fw);
    fw.receive({ endpoint: 'x' });
    assert.match((await failed)[0].message, /no image/);
    failed = nextError(fw);
    fw.receive({ payload: Buffer.from('image') });
    assert.match((await failed)[0].message, /no target/);
    failed = nextError(fw);
    fw.receive({ action: 'cancel' });
    assert.match((await failed)[0].message, /nothing to cancel/);
  });
});
