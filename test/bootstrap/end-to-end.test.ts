import { strict as assert } from 'node:assert';
import { BootstrapServer } from '../../lib/bootstrap/bootstrap-server';
import type { BootstrapFinishedEvent } from '../../lib/bootstrap/bootstrap-server';
import { MemoryBootstrapConfigStore } from '../../lib/bootstrap/config';
import { parseBootstrapBatch } from '../../lib/bootstrap/batch';
import { ProvisioningConfigStore } from '../../lib/bootstrap/provisioning';
import type { Registration } from '../../lib/server/registration';
import { Bench, nextEvent } from '../client/helpers';

/** Our simulator, our bootstrap server and our DM server together: factory bootstrap, then registration. */
describe('bootstrap end to end (simulator -> bootstrap server -> DM server)', function () {
  let bench: Bench;
  let bootstrap: BootstrapServer;
  let provisioning: ProvisioningConfigStore;

  beforeEach(async function () {
    bench = new Bench();
    await bench.startServer({ dtls: { port: 0 } });
    const dm = bench.server;
    provisioning = new ProvisioningConfigStore(new MemoryBootstrapConfigStore(), {
      dmSecurity: () => dm.securityStore,
      defaultConfig: {
        pattern: 'field-*',
        serverUri: `coaps://127.0.0.1:${dm.secureAddress!.port}`,
        securityMode: 'psk',
        lifetime: 120,
        binding: 'U',
      },
    });
    bootstrap = new BootstrapServer({ address: '127.0.0.1', port: 0, configStore: provisioning });
    await bootstrap.start();
    bench.onClose(() => bootstrap.stop());
  });
  afterEach(() => bench.close());

  const bootstrapUri = () => `coap://127.0.0.1:${bootstrap.address!.port}`;

  it('a device with no account gets a generated PSK, which the DM server knows: it registers over DTLS', async function () {
    const finished = nextEvent<BootstrapFinishedEvent>(bootstrap, 'bootstrapFinished');
    const registered = nextEvent<Registration>(bench.server, 'registered', 10_000);
    const client = bench.client({ endpointName: 'field-7', serverUri: undefined, bootstrapUri: bootstrapUri() });
    await client.start();
    const summary = (await finished).summary;
    assert.equal(summary.servers[0].securityMode, 'psk');
    const registration = await registered;
    assert.equal(registration.endpoint, 'field-7');
    assert.deepEqual(registration.security, { mode: 'psk', identity: 'field-7' });
    assert.equal(registration.lifetime, 120);
    assert.equal((await bench.server.read('field-7', '/3/0/0')).code, '2.05');
    // The key was generated once and kept: a second bootstrap provisions the same one.
    const first = (await provisioning.get('field-7'))!.servers[0].pskKey!;
    assert.equal(first.length, 16);
    assert.deepEqual((await bench.server.securityStore.getByPskIdentity('field-7'))?.key, first);
    await client.bootstrap();
    assert.deepEqual((await provisioning.get('field-7'))!.servers[0].pskKey, first);
  });

  it('the default never takes over a name the DM server has credentials for, and is bounded', async function () {
    const known = { endpoint: 'field-9', mode: 'psk' as const, identity: 'field-9-id', key: Buffer.alloc(16, 9) };
    await bench.server.securityStore.add(known);
    assert.equal(await provisioning.get('field-9'), undefined);
    assert.deepEqual(await bench.server.securityStore.getByEndpoint('field-9'), known);
    // A name that is another endpoint's PSK identity on the DM server gets no default either.
    await bench.server.securityStore.add({
      endpoint: 'other',
      mode: 'psk',
      identity: 'field-10',
      key: Buffer.alloc(16),
    });
    assert.equal(await provisioning.get('field-10'), undefined);
    const bounded = new ProvisioningConfigStore(new MemoryBootstrapConfigStore(), {
      defaultConfig: {
        pattern: '*',
        serverUri: 'coap://127.0.0.1:5683',
        securityMode: 'nosec',
        lifetime: 60,
        binding: 'U',
      },
      maxGenerated: 2,
    });
    assert.ok(await bounded.get('a'));
    assert.ok(await bounded.get('b'));
    assert.equal(await bounded.get('c'), undefined);
  });

  it('copies only the DM server account, and checks a batch whole against the DM credentials', async function () {
    const dm = bench.server;
    const dmPort = dm.secureAddress!.port;
    const only = new ProvisioningConfigStore(new MemoryBootstrapConfigStore(), {
      dmSecurity: () => dm.securityStore,
      isDmServer: (uri) => uri.endsWith(`:${dmPort}`),
    });
    await only.set('two-servers', {
      servers: [
        {
          shortServerId: 1,
          uri: 'coaps://elsewhere.example:5684',
          securityMode: 'psk',
          pskIdentity: 'elsewhere',
          pskKey: '01020304',
        },
        {
          shortServerId: 2,
          uri: `coaps://127.0.0.1:${dmPort}`,
          securityMode: 'psk',
          pskIdentity: 'ours',
          pskKey: 'a1a2a3a4',
        },
      ],
    });
    assert.equal(((await dm.securityStore.getByEndpoint('two-servers')) as { identity: string }).identity, 'ours');

    await dm.securityStore.add({ endpoint: 'holder', mode: 'psk', identity: 'taken', key: Buffer.alloc(8) });
    const batch = parseBootstrapBatch(
      `endpoint,serverUri,pskIdentity,pskKey\nb-1,coaps://127.0.0.1:${dmPort},b-1,01020304\nb-2,coaps://127.0.0.1:${dmPort},taken,01020304`,
    );
    await assert.rejects(only.checkBatch(batch), /b-2: PSK identity "taken" already belongs to endpoint "holder"/);
    await assert.rejects(
      only.checkBatch(
        parseBootstrapBatch([
          {
            endpoint: 'c-1',
            servers: [
              {
                shortServerId: 1,
                uri: `coaps://127.0.0.1:${dmPort}`,
                securityMode: 'psk',
                pskIdentity: 'same',
                pskKey: '01020304',
              },
            ],
          },
          {
            endpoint: 'c-2',
            servers: [
              {
                shortServerId: 1,
                uri: `coaps://127.0.0.1:${dmPort}`,
                securityMode: 'psk',
                pskIdentity: 'same',
                pskKey: '01020304',
              },
            ],
          },
        ]),
      ),
      /c-2: PSK identity "same" already belongs to endpoint "c-1"/,
    );
    assert.equal(await dm.securityStore.getByPskIdentity('b-1'), undefined);
  });

  it('an explicit configuration (plain CoAP) wins over the default; an endpoint matching neither is refused', async function () {
    await provisioning.set('meter-1', {
      servers: [{ shortServerId: 7, uri: `coap://127.0.0.1:${bench.port}`, securityMode: 'nosec', lifetime: 90 }],
    });
    const registered = nextEvent<Registration>(bench.server, 'registered', 10_000);
    const meter = bench.client({ endpointName: 'meter-1', serverUri: undefined, bootstrapUri: bootstrapUri() });
    await meter.start();
    const registration = await registered;
    assert.equal(registration.endpoint, 'meter-1');
    assert.equal(registration.security, undefined);
    assert.equal(registration.lifetime, 90);

    const failed = nextEvent<{ endpoint: string; reason: string }>(bootstrap, 'bootstrapFailed');
    const stranger = bench.client({
      endpointName: 'stranger',
      serverUri: undefined,
      bootstrapUri: bootstrapUri(),
      bootstrapRetry: { initialDelayMs: 50, maxDelayMs: 50, maxAttempts: 1 },
    });
    await assert.rejects(stranger.start());
    assert.equal((await failed).endpoint, 'stranger');
  });
});
