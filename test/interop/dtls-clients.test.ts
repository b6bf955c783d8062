/**
 * Our DTLS server against LwM2M client stacks we did not write, built by hand from their sources.
 * Optional: each client runs only when its env var names the binary, otherwise its tests skip.
 *
 *   WAKAAMA_DTLS_CLIENT  Eclipse Wakaama's example client built with tinydtls (`lwm2mclient_tinydtls`,
 *                        examples/client, target lwm2mclient_tinydtls): PSK with TLS_PSK_WITH_AES_128_CCM_8.
 *   ANJAY_DEMO           AVSystem Anjay's demo client (`output/bin/demo`, built with -DWITH_DEMO=ON and
 *                        DTLS_BACKEND=openssl or mbedtls): PSK with each suite we offer.
 *
 *   npm run build:test && WAKAAMA_DTLS_CLIENT=/path/lwm2mclient_tinydtls ANJAY_DEMO=/path/demo \
 *     npx mocha --no-config --timeout 30000 build/test/interop/dtls-clients.test.js
 */
import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Notification } from '../../lib/server/observation-service';
import type { Registration } from '../../lib/server/registration';
import type { SendReport } from '../../lib/server/send';
import { Bench, nextEvent, waitFor } from '../client/helpers';
import { ClientProcess } from './client-process';

const wakaama = process.env.WAKAAMA_DTLS_CLIENT;
const anjay = process.env.ANJAY_DEMO;

const IDENTITY = 'interop-id';
const KEY = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
const WRONG_KEY = Buffer.from('ffeeddccbbaa99887766554433221100', 'hex');

/** Everything one test starts: the server (Bench), the security store entry and the client process. */
function interopBench(endpoint: string) {
  const failures: string[] = [];
  const state = { bench: new Bench(), client: undefined as ClientProcess | undefined };
  return {
    failures,
    state,
    async start(): Promise<number> {
      // Every suite we implement: Anjay is tried with the CBC one too (off by default).
      await state.bench.startServer({ dtls: { port: 0, allowCbcSuites: true } });
      state.bench.server.on('handshakeFailed', (_peer, reason: string) => failures.push(reason));
      await state.bench.server.securityStore.add({ endpoint, mode: 'psk', identity: IDENTITY, key: KEY });
      return state.bench.server.secureAddress!.port;
    },
    async close(): Promise<void> {
      await state.client?.stop();
      await state.bench.close();
    },
  };
}

describe('interop: the DTLS server with Eclipse Wakaama (tinydtls) as the client (optional)', function () {
  const endpoint = 'wakaama-dtls';
  let run: ReturnType<typeof interopBench>;

  before(function () {
    if (wakaama === undefined || !existsSync(wakaama)) this.skip();
  });
  beforeEach(function () {
    run = interopBench(endpoint);
  });
  afterEach(async function () {
    await run?.close();
  });

  /** Starts the server, then the client; `beforeClient` runs in between (to listen for the first events). */
  async function startWakaama(
    options: { name?: string; identity?: string; key?: Buffer } = {},
    beforeClient: () => void = () => undefined,
  ) {
    const port = await run.start();
    beforeClient();
    const args = ['-4', '-h', '127.0.0.1', '-p', String(port), '-l', '0', '-t', '60'];
    args.push('-n', options.name ?? endpoint, '-i', options.identity ?? IDENTITY);
    args.push('-s', (options.key ?? KEY).toString('hex'));
    run.state.client = new ClientProcess(wakaama!, args);
    return run.state.client;
  }

  it('registers with a PSK (CCM_8); read, write, observe, execute, Send, Update and De-register work', async function () {
    const server = () => run.state.bench.server;
    let registered: Promise<Registration> | undefined;
    // Wakaama sends its first Register only after the handshake, on its 2 s CoAP retransmission.
    const client = await startWakaama({}, () => {
      registered = nextEvent<Registration>(server(), 'registered', 15_000);
    });
    const registration = await registered!;
    assert.deepEqual(registration.security, { mode: 'psk', identity: IDENTITY });
    assert.match(registration.peerKey, /^coaps:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(registration.lwm2mVersion, '1.1');
    // Our 'registered' comes before the 2.01 is sent, and Wakaama drops requests until it has the 2.01:
    // the first Read gets through on its CoAP retransmission (100 ms with the bench's timing).
    const device = await server().read(endpoint, '/3/0');
    assert.equal(device.code, '2.05');
    assert.equal((device.value as { byName: Record<string, unknown> }).byName.Manufacturer, 'Open Mobile Alliance');

    assert.equal((await server().write(endpoint, '/3/0/14', '+02:00')).code, '2.04');
    assert.equal((await server().read(endpoint, '/3/0/14')).value, '+02:00');

    const observed = await server().observe(endpoint, '/3/0/14', { owner: 'test' });
    assert.equal(observed.code, '2.05');
    const notified = nextEvent<Notification>(server(), 'notification');
    client.command('change /3/0/14 +05:00');
    const notification = await notified;
    assert.equal(notification.path, '/3/0/14');
    assert.equal(notification.value, '+05:00');

    assert.equal((await server().execute(endpoint, '/3/0/5')).code, '2.04');
    client.command(''); // Wakaama's stdout is a pipe: it is flushed only when it prints its prompt
    await client.waitFor(/FACTORY RESET/, 3000, 'the execute on the client');

    const sent = nextEvent<SendReport>(server(), 'send');
    client.command('send 123 /3/0/9');
    assert.deepEqual(
      (await sent).values.map((value) => value.path),
      ['/3/0/9'],
    );

    const updated = nextEvent<Registration>(server(), 'updated');
    client.command('update 123');
    assert.deepEqual((await updated).security, { mode: 'psk', identity: IDENTITY });

    // 'quit' de-registers; Wakaama (fc4c431) may then crash in lwm2m_close (a use-after-free of its own).
    const gone = nextEvent<Registration>(server(), 'deregistered');
    client.command('quit');
    assert.equal((await gone).endpoint, endpoint);
  });

  it('a wrong key: no registration, and handshakeFailed says why', async function () {
    await startWakaama({ key: WRONG_KEY });
    await waitFor(() => run.failures.length > 0, 10_000, 'a handshake failure');
    assert.match(run.failures[0], /wrong key|bad record MAC/i);
    assert.equal((await run.state.bench.server.listRegistrations()).length, 0);
  });

  it('an unknown identity: no registration, and handshakeFailed names the identity', async function () {
    await startWakaama({ identity: 'nobody' });
    await waitFor(() => run.failures.length > 0, 10_000, 'a handshake failure');
    assert.match(run.failures[0], /unknown PSK identity "nobody"/);
    assert.equal((await run.state.bench.server.listRegistrations()).length, 0);
  });
});

describe('interop: the DTLS server with AVSystem Anjay demo as the client (optional)', function () {
  const endpoint = 'anjay-dtls';
  let run: ReturnType<typeof interopBench>;
  let workdir: string;

  before(function () {
    if (anjay === undefined || !existsSync(anjay)) this.skip();
  });
  beforeEach(function () {
    run = interopBench(endpoint);
    // The demo keeps persistence files in its working directory.
    workdir = mkdtempSync(join(tmpdir(), 'anjay-demo-'));
  });
  afterEach(async function () {
    await run?.close();
    if (workdir) rmSync(workdir, { recursive: true, force: true });
  });

  /** Starts the server, then the client; `beforeClient` runs in between (to listen for the first events). */
  async function startAnjay(
    options: { name?: string; key?: Buffer; ciphersuite?: string; extra?: string[] } = {},
    beforeClient: () => void = () => undefined,
  ) {
    const port = await run.start();
    beforeClient();
    const args = ['-e', options.name ?? endpoint, '-u', `coaps://127.0.0.1:${port}`, '-l', '60'];
    args.push('-s', 'psk', '-i', Buffer.from(IDENTITY).toString('hex'), '-k', (options.key ?? KEY).toString('hex'));
    if (options.ciphersuite) args.push('--ciphersuites', options.ciphersuite);
    args.push(...(options.extra ?? []));
    run.state.client = new ClientProcess(anjay!, args, workdir);
    return run.state.client;
  }

  it('registers with TLS_PSK_WITH_AES_128_CCM_8; read, write, observe (1.2 attributes), execute, de-register', async function () {
    const server = () => run.state.bench.server;
    let registered: Promise<Registration> | undefined;
    const client = await startAnjay({ ciphersuite: '0xC0A8' }, () => {
      registered = nextEvent<Registration>(server(), 'registered', 10_000);
    });
    const registration = await registered!;
    assert.deepEqual(registration.security, { mode: 'psk', identity: IDENTITY });
    assert.match(registration.peerKey, /^coaps:\/\/127\.0\.0\.1:\d+$/);

    const device = await server().read(endpoint, '/3/0');
    assert.equal(device.code, '2.05');
    assert.equal((device.value as { byName: Record<string, unknown> }).byName.Manufacturer, 'anjay');

    assert.equal((await server().write(endpoint, '/3/0/14', '+02:00')).code, '2.04');
    assert.equal((await server().read(endpoint, '/3/0/14')).value, '+02:00');

    const observed = await server().observe(endpoint, '/3/0/13', { owner: 'test', attributes: { pmin: 1, pmax: 1 } });
    assert.equal(observed.code, '2.05');
    const notification = await nextEvent<Notification>(server(), 'notification', 5000);
    assert.equal(notification.path, '/3/0/13');

    // Registration Update Trigger: the device answers 2.04, then sends an Update over the same session.
    const updated = nextEvent<Registration>(server(), 'updated');
    assert.equal((await server().execute(endpoint, '/1/1/8')).code, '2.04');
    assert.deepEqual((await updated).security, { mode: 'psk', identity: IDENTITY });

    const discovered = await server().discover(endpoint, '/3/0');
    assert.ok(discovered.links.some((link) => link.uri === '/3/0/13'));

    // End of stdin: the demo de-registers and exits.
    const gone = nextEvent<Registration>(server(), 'deregistered');
    client.child.stdin.end();
    assert.equal((await gone).endpoint, endpoint);
  });

  for (const [suite, name] of [
    ['0x00A8', 'TLS_PSK_WITH_AES_128_GCM_SHA256'],
    ['0x00AE', 'TLS_PSK_WITH_AES_128_CBC_SHA256'],
  ]) {
    it(`registers with ${name} and is read`, async function () {
      let registered: Promise<Registration> | undefined;
      await startAnjay({ ciphersuite: suite }, () => {
        registered = nextEvent<Registration>(run.state.bench.server, 'registered', 10_000);
      });
      assert.deepEqual((await registered!).security, { mode: 'psk', identity: IDENTITY });
      assert.equal((await run.state.bench.server.read(endpoint, '/3/0/0')).value, 'anjay');
    });
  }

  it('with --use-connection-id (mbedTLS backend): a DTLS Connection ID is negotiated and used', async function () {
    let registered: Promise<Registration> | undefined;
    const client = await startAnjay({ ciphersuite: '0xC0A8', extra: ['--use-connection-id'] }, () => {
      registered = nextEvent<Registration>(run.state.bench.server, 'registered', 10_000);
    });
    assert.deepEqual((await registered!).security, { mode: 'psk', identity: IDENTITY });
    // avs_commons logs the CID with mbedTLS; its OpenSSL backend has no CID and ignores the option.
    const negotiated = await client.waitFor(/negotiated CID = [0-9a-f]+/, 2000, 'the CID').then(
      () => true,
      () => false,
    );
    if (!negotiated) this.skip();
    assert.equal((await run.state.bench.server.read(endpoint, '/3/0/0')).value, 'anjay');
    const gone = nextEvent<Registration>(run.state.bench.server, 'deregistered');
    client.child.stdin.end();
    assert.equal((await gone).endpoint, endpoint);
  });

  it('reconnect (a new handshake, resuming the session when the server allows): the device is still reachable', async function () {
    let registered: Promise<Registration> | undefined;
    const client = await startAnjay({ ciphersuite: '0xC0A8' }, () => {
      registered = nextEvent<Registration>(run.state.bench.server, 'registered', 10_000);
    });
    await registered;
    assert.equal((await run.state.bench.server.read(endpoint, '/3/0/0')).value, 'anjay');
    const before = client.output.length;
    client.command('reconnect');
    // Resumed: Anjay carries on with the registration; a full handshake: it sends an Update first.
    await waitFor(
      () => /statefully resumed connection|reconnected/.test(client.output.slice(before)),
      10_000,
      'the reconnection',
    );
    assert.equal((await run.state.bench.server.read(endpoint, '/3/0/0')).value, 'anjay');
    assert.equal(run.failures.length, 0, run.failures.join('; '));
  });

  it('a wrong key: the client sees decrypt_error, handshakeFailed says why, nothing registers', async function () {
    const client = await startAnjay({ key: WRONG_KEY });
    await waitFor(() => run.failures.length > 0, 10_000, 'a handshake failure');
    assert.match(run.failures[0], /wrong key|bad record MAC/i);
    await client.waitFor(/alert decrypt error|handshake failed/i, 5000, 'the client noticed');
    assert.equal((await run.state.bench.server.listRegistrations()).length, 0);
  });

  it('a suite we do not offer (TLS_PSK_WITH_AES_128_CBC_SHA): handshakeFailed lists what the client offered', async function () {
    await startAnjay({ ciphersuite: '0x008C' });
    await waitFor(() => run.failures.length > 0, 10_000, 'a handshake failure');
    assert.match(run.failures[0], /no cipher suite in common.*0x008c/i);
  });

  it('valid credentials used for another endpoint name: 4.03 with the reason', async function () {
    const client = await startAnjay({ name: 'someone-else' });
    await client.waitFor(/server responded with 4\.03 Forbidden/, 10_000, 'the 4.03');
    assert.equal((await run.state.bench.server.listRegistrations()).length, 0);
  });
});
