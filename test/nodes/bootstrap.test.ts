import { strict as assert } from 'node:assert';
import { Lwm2mClient } from '../../lib/client';
import type { Lwm2mBootstrapConfigNode } from '../../nodes/shared/bootstrap-config';
import { resetBootstrapHosts } from '../../nodes/shared/bootstrap-host';
import type { Lwm2mServerConfigNode } from '../../nodes/shared/server-config';
import { resetHosts } from '../../nodes/shared/server-host';
import { FAST_COAP } from '../client/helpers';
import { freeUdpPort, helper, nextError, nextMessage, ourNodes, until } from './helper';

const nodes = [
  ...ourNodes,
  require('../../nodes/lwm2m-bootstrap'),
  require('../../nodes/lwm2m-bootstrap-in'),
  require('../../nodes/lwm2m-bootstrap-config'),
  require('../../nodes/lwm2m-server-object'),
];
type Msg = Record<string, unknown>;

/** Factory bootstrap from a flow: defaults from the editor, a CSV batch from a msg, DM credentials in one step. */
describe('bootstrap nodes: lwm2m-bootstrap, -bootstrap-in, -bootstrap-config', function () {
  let bootstrapPort: number;
  let securePort: number;
  const clients: Lwm2mClient[] = [];
  const bootstrapEvents: Msg[] = [];
  const registrations: Msg[] = [];

  beforeEach(async function () {
    bootstrapEvents.length = 0;
    registrations.length = 0;
    bootstrapPort = await freeUdpPort();
    securePort = await freeUdpPort();
    await helper.load(nodes, [
      { id: 'f1', type: 'tab', label: 'test' },
      {
        id: 'srv',
        type: 'lwm2m-server',
        address: '127.0.0.1',
        port: '0',
        dtlsEnabled: true,
        securePort: String(securePort),
      },
      {
        id: 'bs',
        type: 'lwm2m-bootstrap',
        address: '127.0.0.1',
        port: String(bootstrapPort),
        dmServer: 'srv',
        defaultEnabled: true,
        defaultPattern: 'soil-*',
        defaultServerUri: `coaps://127.0.0.1:${securePort}`,
        defaultSecurityMode: 'psk',
        defaultLifetime: '120',
        defaultBinding: 'U',
      },
      { id: 'reg', z: 'f1', type: 'lwm2m-register-in', server: 'srv', wires: [['regOut']] },
      { id: 'regOut', z: 'f1', type: 'helper' },
      { id: 'bsin', z: 'f1', type: 'lwm2m-bootstrap-in', bootstrap: 'bs', wires: [['bsOut']] },
      { id: 'bsOut', z: 'f1', type: 'helper' },
      { id: 'cfg', z: 'f1', type: 'lwm2m-bootstrap-config', bootstrap: 'bs', action: '', wires: [['cfgOut']] },
      { id: 'cfgOut', z: 'f1', type: 'helper' },
      {
        id: 'account',
        z: 'f1',
        type: 'lwm2m-server-object',
        server: 'srv',
        action: 'bootstrap',
        wires: [['accountOut']],
      },
      { id: 'accountOut', z: 'f1', type: 'helper' },
    ]);
    helper.getNode('bsOut').on('input', (msg: Msg) => bootstrapEvents.push(msg));
    helper.getNode('regOut').on('input', (msg: Msg) => registrations.push(msg));
    await (helper.getNode('bs') as unknown as Lwm2mBootstrapConfigNode).ready();
    await (helper.getNode('srv') as unknown as Lwm2mServerConfigNode).ready();
  });
  afterEach(async function () {
    for (const client of clients.splice(0)) await client.stop({ timeoutMs: 500 }).catch(() => undefined);
    await helper.unload();
    await resetBootstrapHosts();
    await resetHosts();
  });

  async function bootstrapDevice(endpointName: string): Promise<Lwm2mClient> {
    const client = new Lwm2mClient({
      endpointName,
      bootstrapUri: `coap://127.0.0.1:${bootstrapPort}`,
      coap: FAST_COAP,
      bootstrapRetry: { initialDelayMs: 50, maxDelayMs: 200, maxAttempts: 2 },
    });
    clients.push(client);
    await client.start();
    return client;
  }

  it('the editor default gives each matching device its own PSK; it registers over DTLS at once', async function () {
    await bootstrapDevice('soil-01');
    await until(() => registrations.length > 0);
    assert.deepEqual(
      bootstrapEvents.map((msg) => (msg.lwm2m as { event: string }).event),
      ['started', 'finished'],
    );
    const finished = bootstrapEvents[1].payload as { summary: { servers: Array<{ securityMode: string }> } };
    assert.equal(finished.summary.servers[0].securityMode, 'psk');
    assert.equal(registrations[0].topic, 'soil-01');
    assert.deepEqual((registrations[0].payload as { security?: unknown }).security, {
      mode: 'psk',
      identity: 'soil-01',
    });
    // The generated key is kept as the device's configuration; listed without it.
    const listed = nextMessage(helper.getNode('cfgOut'));
    helper.getNode('cfg').receive({ action: 'list' });
    const [entry] = (await listed).payload as Array<{ endpoint: string; servers: Array<Record<string, unknown>> }>;
    assert.equal(entry.endpoint, 'soil-01');
    assert.equal(entry.servers[0].pskIdentity, 'soil-01');
    assert.equal(entry.servers[0].pskKey, undefined);
  });

  it('a CSV batch from a msg provisions its devices; a bad line stores nothing and goes to Catch', async function () {
    const config = helper.getNode('srv') as unknown as Lwm2mServerConfigNode;
    const plainPort = config.server.address!.port;
    const cfg = helper.getNode('cfg');
    const failed = nextError(cfg);
    cfg.receive({ action: 'add', payload: `endpoint,serverUri,pskKey\nmeter-1,coaps://127.0.0.1:${securePort},0102` });
    assert.match((await failed)[0].message, /line 2 \(meter-1\): .*pskKey/);

    const added = nextMessage(helper.getNode('cfgOut'));
    cfg.receive({
      action: 'add',
      payload: `endpoint,serverUri,securityMode,pskKey,lifetime\nmeter-1,coap://127.0.0.1:${plainPort},nosec,,90\nmeter-2,coaps://127.0.0.1:${securePort},psk,a0a1a2a3a4a5a6a7,90\n`,
    });
    assert.deepEqual((await added).payload, { added: ['meter-1', 'meter-2'], replaced: [] });
    // The PSK of meter-2 reached the DM server's credentials in the same step.
    assert.equal((await config.server.securityStore.getByPskIdentity('meter-2'))?.endpoint, 'meter-2');

    await bootstrapDevice('meter-1');
    await bootstrapDevice('meter-2');
    await until(() => registrations.length === 2);
    const byName = Object.fromEntries(
      registrations.map((msg) => [msg.topic, msg.payload as { secure: boolean; lifetime: number }]),
    );
    assert.equal(byName['meter-1'].secure, false);
    assert.equal(byName['meter-2'].secure, true);
    assert.equal(byName['meter-2'].lifetime, 90);
  });

  it('server-initiated: the server account node tells a registered device to bootstrap again', async function () {
    await bootstrapDevice('soil-02');
    await until(() => registrations.length === 1);
    const done = nextMessage(helper.getNode('accountOut'));
    helper.getNode('account').receive({ endpoint: 'soil-02' });
    assert.equal(((await done).lwm2m as { code: string }).code, '2.04');
    // It de-registers, bootstraps (started, finished) and registers again with what it got.
    await until(() => bootstrapEvents.length === 4 && registrations.length >= 3);
    assert.deepEqual(
      bootstrapEvents.map((msg) => (msg.lwm2m as { event: string }).event),
      ['started', 'finished', 'started', 'finished'],
    );
    assert.deepEqual(
      registrations.map((msg) => (msg.lwm2m as { event: string }).event),
      ['registered', 'deregistered', 'registered'],
    );
  });

  it('server-initiated: a device without the trigger gets a clear error', async function () {
    const config = helper.getNode('srv') as unknown as Lwm2mServerConfigNode;
    const old = new Lwm2mClient({
      endpointName: 'old-1',
      serverUri: `coap://127.0.0.1:${config.server.address!.port}`,
      lwm2mVersion: '1.0',
      coap: FAST_COAP,
    });
    clients.push(old);
    await old.start();
    const failed = nextError(helper.getNode('account'));
    helper.getNode('account').receive({ endpoint: 'old-1' });
    assert.match((await failed)[0].message, /old-1 has no Bootstrap-Request Trigger \(\/1\/0\/9/);
  });

  it('a device with no configuration is refused; the failure comes out with its step', async function () {
    const client = new Lwm2mClient({
      endpointName: 'stranger',
      bootstrapUri: `coap://127.0.0.1:${bootstrapPort}`,
      coap: FAST_COAP,
      bootstrapRetry: { initialDelayMs: 50, maxDelayMs: 50, maxAttempts: 1 },
    });
    clients.push(client);
    await assert.rejects(client.start());
    await until(() => bootstrapEvents.length > 0);
    const failed = bootstrapEvents[0];
    assert.equal((failed.lwm2m as { event: string }).event, 'failed');
    assert.equal((failed.payload as { step: string }).step, 'request');
  });
});
