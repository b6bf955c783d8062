/**
 * Pull over HTTP (pullVia 'http'): the image on a small node:http server of the Lwm2mServer under the same
 * unguessable, expiring /fw/<id> path; 404 for unknown or expired paths, GET and HEAD only, Content-Length set;
 * the HTTP server closes when no package is served over it any more.
 */
import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { FirmwareJob, FirmwareJobError, packageServerFor, type FirmwareJobOptions } from '../../lib/firmware';
import { Bench } from '../client/helpers';
import { fastJob, firmwareDevice, firmwarePackage, recorder } from './helpers';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function httpRequest(url: string, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method, agent: false }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) }),
      );
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end();
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = http.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

describe('firmware: pull over HTTP', function () {
  let bench: Bench;

  beforeEach(async function () {
    bench = new Bench();
    await bench.startServer();
  });

  afterEach(async function () {
    const packages = packageServerFor(bench.server);
    await bench.close();
    await packages.httpClosed();
    assert.equal(packages.httpRunning, false, 'no HTTP server left open');
  });

  const job = (options: Partial<FirmwareJobOptions> & { endpoint: string }) =>
    fastJob(bench.server, options, { method: 'pull', pullVia: 'http' });

  it('the device pulls http://<address>:<port>/fw/<id>, updates, and the HTTP server closes after', async function () {
    const device = await firmwareDevice(bench, 'fw-http');
    const packages = packageServerFor(bench.server);
    const { events, listener } = recorder();
    const j = job({
      endpoint: 'fw-http',
      image: firmwarePackage('5.1.0', 50000),
      expectedPackageVersion: '5.1.0',
      expectedFirmwareVersion: '5.1.0',
    });
    j.on('progress', listener);
    const result = await j.run();
    assert.equal(result.ok, true);
    assert.equal(result.method, 'pull');
    assert.equal(result.firmwareVersion, '5.1.0');
    assert.equal(device.get('/3/0/3'), '5.1.0');
    const uri = String(device.get('/5/0/1'));
    assert.match(uri, /^http:\/\/127\.0\.0\.1:\d+\/fw\/[0-9a-f]{32}$/);
    assert.notEqual(Number(new URL(uri).port), bench.port, 'not the CoAP port');
    assert.ok(events.some((e) => e.state === 'downloading' && e.detail.includes(uri)));
    assert.equal(packages.size, 0, 'nothing served any more');
    assert.equal(packages.httpRunning, false, 'the HTTP server is closing');
    await packages.httpClosed();
    await assert.rejects(httpRequest(uri), /ECONNREFUSED/, 'nobody listens any more');
  });

  it('the job path 404s after the job while the HTTP server still serves another package', async function () {
    await firmwareDevice(bench, 'fw-http-404');
    const packages = packageServerFor(bench.server);
    const other = await packages.publishHttp(firmwarePackage('0.0.1', 100));
    try {
      const j = job({ endpoint: 'fw-http-404', image: firmwarePackage('5.2.0'), expectedFirmwareVersion: '5.2.0' });
      let uri = '';
      j.on('progress', (p) => {
        const match = /http:\/\/\S+/.exec(p.detail);
        if (p.state === 'downloading' && match) uri = match[0];
      });
      assert.equal((await j.run()).ok, true);
      assert.equal(new URL(uri).port, String(other.port), 'the running HTTP server is reused');
      const after = await httpRequest(uri);
      assert.equal(after.status, 404, 'the path expired with the job');
      assert.equal(packages.httpRunning, true);
    } finally {
      other.expire();
    }
    assert.equal(packages.httpRunning, false);
  });

  it('answers GET and HEAD with Content-Length, 405 to other methods, 404 to unknown paths', async function () {
    const packages = packageServerFor(bench.server);
    const image = firmwarePackage('5.3.0', 3000);
    const published = await packages.publishHttp(image);
    try {
      assert.equal(published.address, '127.0.0.1', 'bound like the CoAP listener');
      const base = `http://127.0.0.1:${published.port}`;
      const got = await httpRequest(base + published.path);
      assert.equal(got.status, 200);
      assert.equal(got.headers['content-length'], String(image.length));
      assert.equal(got.headers['content-type'], 'application/octet-stream');
      assert.deepEqual(got.body, image);
      const head = await httpRequest(base + published.path, 'HEAD');
      assert.equal(head.status, 200);
      assert.equal(head.headers['content-length'], String(image.length));
      assert.equal(head.body.length, 0);
      assert.equal(published.requests, 2);
      const post = await httpRequest(base + published.path, 'POST');
      assert.equal(post.status, 405);
      assert.equal(post.headers.allow, 'GET, HEAD');
      for (const path of ['/fw/' + '0'.repeat(32), '/fw', '/', published.path + '/x', '/other' + published.path]) {
        assert.equal((await httpRequest(base + path)).status, 404, path);
      }
      assert.equal(published.requests, 2);
    } finally {
      published.expire();
    }
    assert.equal(packages.httpRunning, false);
    await packages.httpClosed();
  });

  it('starts the HTTP server on the httpPort option', async function () {
    const device = await firmwareDevice(bench, 'fw-http-port');
    const port = await freePort();
    const result = await job({ endpoint: 'fw-http-port', image: firmwarePackage('5.4.0'), httpPort: port }).run();
    assert.equal(result.ok, true);
    assert.equal(new URL(String(device.get('/5/0/1'))).port, String(port));
    assert.equal(device.get('/3/0/3'), '5.4.0');
  });

  it('fails with request-failed when the HTTP server cannot listen (port taken), serving nothing', async function () {
    await firmwareDevice(bench, 'fw-http-taken');
    const blocker = http.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    try {
      const port = (blocker.address() as AddressInfo).port;
      const err = await job({ endpoint: 'fw-http-taken', image: firmwarePackage('5.5.0'), httpPort: port })
        .run()
        .then(
          () => assert.fail('the job succeeded'),
          (e: unknown) => e,
        );
      assert.ok(err instanceof FirmwareJobError);
      assert.equal(err.cause, 'request-failed');
      assert.match(err.message, /HTTP package server/);
      assert.equal(packageServerFor(bench.server).size, 0);
      assert.equal(packageServerFor(bench.server).httpRunning, false);
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });

  it('checks pullVia and httpPort', function () {
    const image = firmwarePackage('1');
    assert.throws(
      () => new FirmwareJob(bench.server, { endpoint: 'x', image, pullVia: 'ftp' as 'http' }),
      /pullVia is 'coap', 'http' or 'https'/,
    );
    assert.throws(() => new FirmwareJob(bench.server, { endpoint: 'x', image, httpPort: 70000 }), /not a port/);
    assert.throws(() => new FirmwareJob(bench.server, { endpoint: 'x', image, httpPort: 1.5 }), /not a port/);
  });
});
