/**
 * Firmware Update (object 5): push with Block1 through our server, pull from a coap:// URI served by
 * node-coap (Block2) and from http://, the Update with its simulated reboot, and the failure modes.
 */
import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Socket } from 'node:dgram';
import * as coap from 'coap';
import type { Lwm2mClient, Lwm2mClientOptions } from '../../lib/client';
import { Lwm2mRequestError } from '../../lib/server/errors';
import { Bench, nextEvent, sleep, waitFor } from './helpers';

const OPAQUE = 42;

function firmwarePackage(version: string, size = 6000): Buffer {
  const head = Buffer.from(`version=${version}\n`);
  const body = Buffer.alloc(size - head.length);
  for (let i = 0; i < body.length; i++) body[i] = (i * 31 + 7) & 255;
  return Buffer.concat([head, body]);
}

type CoapServer = ReturnType<typeof coap.createServer>;

describe('client: firmware update (object 5)', function () {
  let bench: Bench;
  let client: Lwm2mClient;
  let states: Array<{ state: number; result: number }>;

  async function device(options: Partial<Lwm2mClientOptions> = {}): Promise<Lwm2mClient> {
    client = await bench.registered({
      endpointName: 'fw-1',
      objects: [5],
      firmware: { updateDelayMs: 20, downloadTimeoutMs: 3000, ...options.firmware },
      ...options,
    });
    states = [];
    client.on('firmware', (event) => states.push(event));
    return client;
  }

  /** Waits for the device to be back after the Update's reboot. */
  async function updateAndWaitForReboot(): Promise<void> {
    const back = nextEvent(bench.server, 'registered', 5000);
    const result = await bench.server.execute('fw-1', '/5/0/2');
    assert.equal(result.code, '2.04');
    await back;
    await waitFor(() => client.registered, 2000, 'the device registered again');
  }

  beforeEach(async function () {
    bench = new Bench();
    await bench.startServer();
  });

  afterEach(async function () {
    await bench.close();
  });

  it('announces its firmware update capabilities', async function () {
    await device();
    const instance = (await bench.server.read('fw-1', '/5/0')).value as { byId: Record<string, unknown> };
    assert.equal(instance.byId['3'], 0, 'Idle');
    assert.equal(instance.byId['5'], 0, 'Initial');
    assert.deepEqual(instance.byId['8'], { 0: 0, 1: 2, 2: 3 }, 'CoAP, HTTP, HTTPS');
    assert.equal(instance.byId['9'], 2, 'push and pull');
    assert.equal(instance.byId['0'], undefined, 'Package is write-only');
  });

  it('takes a package pushed with Block1, updates, reboots into the new version', async function () {
    await device();
    const pkg = firmwarePackage('2.0.0', 9000);
    const written = await bench.server.write('fw-1', '/5/0/0', pkg, { format: OPAQUE });
    assert.equal(written.code, '2.04');
    await waitFor(() => client.get('/5/0/3') === 2, 2000, 'Downloaded');
    assert.equal((await bench.server.read('fw-1', '/5/0/7')).value, '2.0.0', 'PkgVersion');
    await updateAndWaitForReboot();
    assert.equal((await bench.server.read('fw-1', '/3/0/3')).value, '2.0.0');
    assert.equal((await bench.server.read('fw-1', '/5/0/5')).value, 1, 'Update Result: success');
    assert.equal((await bench.server.read('fw-1', '/5/0/3')).value, 0, 'Idle again');
    assert.deepEqual(
      states.map((s) => s.state),
      [1, 2, 3, 0],
    );
  });

  it('notifies an observer of the state changes', async function () {
    await device();
    const seen: unknown[] = [];
    bench.server.on('notification', (n) => seen.push(n.value));
    await bench.server.observe('fw-1', '/5/0/3');
    await bench.server.write('fw-1', '/5/0/0', firmwarePackage('3.1'), { format: OPAQUE });
    await waitFor(() => seen.includes(2), 2000, 'a Downloaded notification');
  });

  describe('pull from a Package URI', function () {
    let coapServer: CoapServer;
    let coapPort: number;
    let httpServer: http.Server;
    let httpPort: number;
    const served = firmwarePackage('4.2.0', 20000);

    beforeEach(async function () {
      coapServer = coap.createServer({ type: 'udp4' }, (req, res) => {
        if (req.url === '/fw/pkg.bin') res.end(served);
        else {
          res.code = '4.04';
          res.end();
        }
      });
      await new Promise<void>((resolve) => coapServer.listen(0, '127.0.0.1', () => resolve()));
      coapPort = ((coapServer as unknown as { _sock: Socket })._sock.address() as AddressInfo).port;
      httpServer = http.createServer((req, res) => {
        if (req.url === '/fw/pkg.bin') res.end(served);
        else {
          res.statusCode = 404;
          res.end();
        }
      });
      await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', () => resolve()));
      httpPort = (httpServer.address() as AddressInfo).port;
    });

    afterEach(async function () {
      await new Promise<void>((resolve) => coapServer.close(() => resolve()));
      httpServer.closeAllConnections();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    });

    it('downloads from coap:// with Block2 and updates', async function () {
      await device();
      await bench.server.write('fw-1', '/5/0/1', `coap://127.0.0.1:${coapPort}/fw/pkg.bin`);
      await waitFor(() => client.get('/5/0/3') === 2, 5000, 'Downloaded');
      assert.equal(client.get('/5/0/1'), `coap://127.0.0.1:${coapPort}/fw/pkg.bin`);
      await updateAndWaitForReboot();
      assert.equal(client.get('/3/0/3'), '4.2.0');
      assert.equal(client.get('/5/0/5'), 1);
    });

    it('downloads from http://', async function () {
      await device();
      await bench.server.write('fw-1', '/5/0/1', `http://127.0.0.1:${httpPort}/fw/pkg.bin`);
      await waitFor(() => client.get('/5/0/3') === 2, 5000, 'Downloaded');
      await updateAndWaitForReboot();
      assert.equal(client.get('/3/0/3'), '4.2.0');
    });

    it('reports an invalid URI (7), an unsupported protocol (9) and a lost connection (4)', async function () {
      await device();
      const outcome = async (uri: string): Promise<number> => {
        states.length = 0;
        await bench.server.write('fw-1', '/5/0/1', uri);
        await waitFor(() => states.length >= 2 && states[states.length - 1].state === 0, 5000, `the end of ${uri}`);
        return Number(client.get('/5/0/5'));
      };
      assert.equal(await outcome(`coap://127.0.0.1:${coapPort}/fw/missing.bin`), 7);
      assert.equal(await outcome(`http://127.0.0.1:${httpPort}/fw/missing.bin`), 7);
      assert.equal(await outcome('ftp://127.0.0.1/fw.bin'), 9);
      assert.equal(await outcome('not a uri'), 7);
      const closed = http.createServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', () => resolve()));
      const closedPort = (closed.address() as AddressInfo).port;
      await new Promise<void>((resolve) => closed.close(() => resolve()));
      assert.equal(await outcome(`http://127.0.0.1:${closedPort}/fw.bin`), 4);
    });
  });

  it('fails the integrity check on purpose (result 5, back to Idle)', async function () {
    await device({ firmware: { failure: 'integrity' } });
    await bench.server.write('fw-1', '/5/0/0', firmwarePackage('9.9'), { format: OPAQUE });
    await waitFor(() => states.some((s) => s.result === 5), 2000, 'integrity failure');
    assert.equal(client.get('/5/0/3'), 0);
    await assert.rejects(bench.server.execute('fw-1', '/5/0/2'), (err: Lwm2mRequestError) => err.code === '4.00');
  });

  it('reboots into the old version on purpose (result 8)', async function () {
    await device({ firmware: { failure: 'rollback' } });
    await bench.server.write('fw-1', '/5/0/0', firmwarePackage('5.0'), { format: OPAQUE });
    await waitFor(() => client.get('/5/0/3') === 2, 2000, 'Downloaded');
    await updateAndWaitForReboot();
    assert.equal((await bench.server.read('fw-1', '/3/0/3')).value, '1.0.0');
    assert.equal((await bench.server.read('fw-1', '/5/0/5')).value, 8);
  });

  it('never comes back on purpose', async function () {
    await device({ firmware: { failure: 'no-return' } });
    let registrations = 0;
    bench.server.on('registered', () => registrations++);
    await bench.server.write('fw-1', '/5/0/0', firmwarePackage('6.0'), { format: OPAQUE });
    await waitFor(() => client.get('/5/0/3') === 2, 2000, 'Downloaded');
    await bench.server.execute('fw-1', '/5/0/2');
    await waitFor(() => client.state === 'offline', 2000, 'offline');
    await sleep(300);
    assert.equal(registrations, 0);
    await assert.rejects(bench.server.read('fw-1', '/3/0/3', { timeoutMs: 300 }), /timeout/);
  });

  it('refuses Update before a download (4.00), resets on an empty package, cancels (1.1, result 10)', async function () {
    await device();
    await assert.rejects(bench.server.execute('fw-1', '/5/0/2'), (err: Lwm2mRequestError) => err.code === '4.00');
    await bench.server.write('fw-1', '/5/0/0', firmwarePackage('7.0'), { format: OPAQUE });
    await waitFor(() => client.get('/5/0/3') === 2, 2000, 'Downloaded');
    await assert.rejects(
      bench.server.write('fw-1', '/5/0/0', firmwarePackage('7.1'), { format: OPAQUE }),
      (err: Lwm2mRequestError) => err.code === '4.00',
      'a second package while one is downloaded',
    );
    await bench.server.write('fw-1', '/5/0/0', Buffer.alloc(0), { format: OPAQUE });
    assert.equal(client.get('/5/0/3'), 0);
    await bench.server.write('fw-1', '/5/0/0', firmwarePackage('7.2'), { format: OPAQUE });
    await waitFor(() => client.get('/5/0/3') === 2, 2000, 'Downloaded');
    await bench.server.execute('fw-1', '/5/0/10');
    assert.equal(client.get('/5/0/3'), 0);
    assert.equal(client.get('/5/0/5'), 10);
  });
});
