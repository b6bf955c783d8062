/**
 * Pull over HTTPS (pullVia 'https'): the image on a node:https server of the Lwm2mServer, with the certificate
 * of its DTLS listener by default or one given to the job, under the same unguessable, expiring /fw/<id> path.
 * Peers we did not write check it: curl (with and without the test CA), and the simulator's node:https client
 * with the CA it is given; a device that does not trust the certificate fails its download (Update Result 4).
 * Certificates are made with the openssl CLI.
 */
import { strict as assert } from 'node:assert';
import { FirmwareJob, FirmwareJobError, packageServerFor, type FirmwareJobOptions } from '../../lib/firmware';
import { Bench } from '../client/helpers';
import {
  createHttpsPki,
  FAST_TIMEOUTS,
  fastJob,
  firmwareDevice,
  firmwarePackage,
  hasBinary,
  recorder,
  runCommand,
  type HttpsPki,
} from './helpers';

describe('firmware: pull over HTTPS', function () {
  let pki: HttpsPki;
  let bench: Bench;

  before(function () {
    if (!hasBinary('openssl')) this.skip();
    pki = createHttpsPki();
  });
  after(() => pki?.remove());

  beforeEach(async function () {
    bench = new Bench();
    // The server's own X.509 credentials, as the lwm2m-server config node gives them to the DTLS listener.
    await bench.startServer({
      dtls: { port: 0, certificate: { chain: [pki.read('server.pem')], privateKey: pki.read('server.key') } },
    });
  });

  afterEach(async function () {
    const packages = packageServerFor(bench.server);
    await bench.close();
    await packages.httpsClosed();
    assert.equal(packages.httpsRunning, false, 'no HTTPS server left open');
  });

  const job = (options: Partial<FirmwareJobOptions> & { endpoint: string }) =>
    fastJob(bench.server, options, { method: 'pull', pullVia: 'https' });

  it('curl fetches the image with the CA (GET and HEAD), refuses the server without it, 404s unknown paths', async function () {
    if (!hasBinary('curl')) this.skip();
    const packages = packageServerFor(bench.server);
    const image = firmwarePackage('6.0.0', 200_000);
    const published = await packages.publishHttps(image);
    try {
      assert.equal(published.address, '127.0.0.1', 'bound like the CoAP listener');
      const url = `https://127.0.0.1:${published.port}${published.path}`;
      const got = await runCommand('curl', ['-sS', '--fail', '--cacert', pki.path('ca.pem'), url]);
      assert.equal(got.code, 0, got.stderr);
      assert.ok(got.stdout.equals(image), 'the same bytes');
      assert.equal(published.sentBytes, image.length);
      const head = await runCommand('curl', ['-sS', '-I', '--cacert', pki.path('ca.pem'), url]);
      assert.equal(head.code, 0, head.stderr);
      assert.match(head.stdout.toString(), /^HTTP\/1\.1 200/);
      assert.match(head.stdout.toString(), new RegExp(`content-length: ${image.length}\\r?\\n`, 'i'));
      const untrusted = await runCommand('curl', ['-sS', '-o', '/dev/null', url]);
      assert.equal(untrusted.code, 60, `curl checks the certificate: ${untrusted.stderr}`);
      const unknown = await runCommand('curl', [
        ...['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', pki.path('ca.pem')],
        `https://127.0.0.1:${published.port}/fw/${'0'.repeat(32)}`,
      ]);
      assert.equal(unknown.stdout.toString(), '404');
      assert.equal(published.requests, 2, 'GET and HEAD');
    } finally {
      published.expire();
    }
    assert.equal(packages.httpsRunning, false, 'closed with its last package');
  });

  it('the device pulls https://<address>:<port>/fw/<id> trusting the CA, updates; progress on the way', async function () {
    const device = await firmwareDevice(bench, 'fw-https', { tls: { ca: pki.read('ca.pem') } });
    const packages = packageServerFor(bench.server);
    const { events, listener } = recorder();
    const image = firmwarePackage('6.1.0', 400_000);
    const j = job({ endpoint: 'fw-https', image, expectedPackageVersion: '6.1.0', expectedFirmwareVersion: '6.1.0' });
    j.on('progress', listener);
    const result = await j.run();
    assert.equal(result.ok, true);
    assert.equal(result.method, 'pull');
    assert.equal(device.get('/3/0/3'), '6.1.0');
    const uri = String(device.get('/5/0/1'));
    assert.match(uri, /^https:\/\/127\.0\.0\.1:\d+\/fw\/[0-9a-f]{32}$/);
    const between = events.filter((e) => e.state === 'downloading' && e.percent! > 0 && e.percent! < 100);
    assert.ok(between.length >= 2, `download progress told: ${JSON.stringify(events.map((e) => e.percent))}`);
    const percents = between.map((e) => e.percent!);
    assert.deepEqual(
      percents,
      [...percents].sort((a, b) => a - b),
      'rising',
    );
    assert.match(between[0].detail, /^the device fetched \d+ of 400000 bytes$/);
    assert.equal(packages.size, 0, 'the path expired with the job');
    assert.equal(packages.httpsRunning, false);
  });

  it('uses the certificate given to the job instead of the DTLS one', async function () {
    const device = await firmwareDevice(bench, 'fw-https-own', { tls: { ca: pki.read('other-ca.pem') } });
    const result = await job({
      endpoint: 'fw-https-own',
      image: firmwarePackage('6.2.0'),
      expectedFirmwareVersion: '6.2.0',
      httpsCertificate: { chain: [pki.read('other-server.pem')], privateKey: pki.read('other-server.key') },
    }).run();
    assert.equal(result.ok, true);
    assert.equal(device.get('/3/0/3'), '6.2.0');
  });

  it('a device that does not trust the certificate fails its download: connection-lost (result 4)', async function () {
    const device = await firmwareDevice(bench, 'fw-https-distrust', { tls: { ca: pki.read('other-ca.pem') } });
    const err = await job({ endpoint: 'fw-https-distrust', image: firmwarePackage('6.3.0') })
      .run()
      .then(
        () => assert.fail('the job succeeded'),
        (e: unknown) => e,
      );
    assert.ok(err instanceof FirmwareJobError);
    assert.equal(err.cause, 'connection-lost');
    assert.equal(err.result.result, 4);
    assert.equal(err.result.phase, 'downloading');
    assert.equal(device.get('/3/0/3'), '1.0.0', 'still the old firmware');
  });
});

describe('firmware: pull over HTTPS without a certificate', function () {
  let bench: Bench;

  beforeEach(async function () {
    bench = new Bench();
    await bench.startServer();
  });

  afterEach(async function () {
    await bench.close();
  });

  it('fails with request-failed, saying a certificate is missing, and serves nothing', async function () {
    await firmwareDevice(bench, 'fw-https-nocert');
    const err = await new FirmwareJob(bench.server, {
      endpoint: 'fw-https-nocert',
      image: firmwarePackage('6.4.0'),
      method: 'pull',
      pullVia: 'https',
      timeouts: FAST_TIMEOUTS,
    })
      .run()
      .then(
        () => assert.fail('the job succeeded'),
        (e: unknown) => e,
      );
    assert.ok(err instanceof FirmwareJobError);
    assert.equal(err.cause, 'request-failed');
    assert.match(err.message, /HTTPS package server does not start: no certificate for HTTPS/);
    assert.equal(packageServerFor(bench.server).size, 0);
    assert.equal(packageServerFor(bench.server).httpsRunning, false);
  });
});
