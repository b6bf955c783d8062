import { strict as assert } from 'node:assert';
import {
  BootstrapConfigError,
  MemoryBootstrapConfigStore,
  buildPlan,
  endpointPattern,
  parseBootstrapConfig,
} from '../../lib/bootstrap';
import { MODEL, resourcesOf } from './helpers';

const PSK_SERVER = {
  shortServerId: 101,
  uri: 'coaps://dm.example.com:5684',
  securityMode: 'psk',
  pskIdentity: 'dev-1',
  pskKey: '000102030405060708090a0b0c0d0e0f',
};

describe('bootstrap configuration', function () {
  it('fills in the defaults of a minimal configuration', function () {
    const config = parseBootstrapConfig({ server: { shortServerId: 1, uri: 'coap://dm.example.com' } });
    assert.deepEqual(config, {
      servers: [
        {
          uri: 'coap://dm.example.com',
          securityMode: 'nosec',
          shortServerId: 1,
          lifetime: 86400,
          binding: 'U',
          notificationStoring: true,
        },
      ],
      deletePaths: ['/0', '/1'],
      acl: 'auto',
      objects: {},
      discover: false,
      read: [],
    });
  });

  it('takes PSK keys as hex, content formats by name, and validates objects against the model', function () {
    const config = parseBootstrapConfig({
      servers: [{ ...PSK_SERVER, lifetime: 300, defaultMinPeriod: 5, defaultMaxPeriod: 60, muteSend: true }],
      contentFormat: 'senml-cbor',
      objects: { '/3303/0': { 5750: 'fridge' } },
      read: ['/1'],
      discover: true,
    });
    assert.deepEqual(config.servers[0].pskKey, Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex'));
    assert.equal(config.contentFormat, 112);
    assert.equal(config.servers[0].muteSend, true);
    assert.deepEqual(config.read, ['/1']);
  });

  it('rejects what cannot be provisioned, naming the field', function () {
    const cases: Array<[unknown, RegExp]> = [
      [{}, /^servers: give at least one/],
      [{ servers: [{ shortServerId: 1, uri: 'http://x' }] }, /servers\[0\]\.uri: must be coap/],
      [{ servers: [{ shortServerId: 0, uri: 'coap://x' }] }, /servers\[0\]\.shortServerId: an integer in 1\.\.65534/],
      [{ servers: [{ uri: 'coap://x' }] }, /shortServerId: missing/],
      [{ servers: [{ shortServerId: 1, uri: 'coaps://x' }] }, /securityMode: a coaps:\/\/ server needs/],
      [{ servers: [{ shortServerId: 1, uri: 'coap://x', securityMode: 'psk' }] }, /psk needs a coaps:\/\/ URI/],
      [{ servers: [{ ...PSK_SERVER, pskKey: 'xyz' }] }, /servers\[0\]\.pskKey: hex text/],
      [{ servers: [{ ...PSK_SERVER, pskKey: '0102' }] }, /pskKey: must be 4-64 bytes, not 2/],
      [{ servers: [{ ...PSK_SERVER, pskIdentity: '' }] }, /pskIdentity: a PSK account needs an identity/],
      [{ servers: [PSK_SERVER, PSK_SERVER] }, /shortServerId 101 is used twice/],
      [{ servers: [{ ...PSK_SERVER, binding: 'UU' }] }, /binding: letters/],
      [{ servers: [{ ...PSK_SERVER, muteSend: true }], lwm2mVersion: '1.0' }, /muteSend: Mute Send .* is LwM2M 1\.1/],
      [{ servers: [{ ...PSK_SERVER, defaultMinPeriod: 60, defaultMaxPeriod: 5 }] }, /defaultMaxPeriod: smaller/],
      [{ servers: [{ ...PSK_SERVER, lifetme: 60 }] }, /servers\[0\]\.lifetme: unknown field/],
      [{ servers: [PSK_SERVER], read: ['/3/0'] }, /read: BS-Read may only read \/1 and \/2/],
      [{ servers: [PSK_SERVER], deletePaths: ['/0/1/2'] }, /deletePaths\[0\]: .* deeper than an instance/],
      [{ servers: [PSK_SERVER], objects: { '/1/0': {} } }, /objects\["\/1\/0"\]: objects 0, 1 and 2 come from/],
      [{ servers: [PSK_SERVER], objects: { '/3303/0': { 5700: 'hot' } } }, /objects\["\/3303\/0"\]: /],
      [{ servers: [PSK_SERVER], acl: [{ path: '/3/0', rights: { 7: 'R' } }] }, /7 is not the short server id/],
      [{ servers: [PSK_SERVER], acl: [{ path: '/3/0', rights: { 101: 'RX' } }] }, /letters from R, W, E, D, C/],
      [{ servers: [PSK_SERVER], contentFormat: 'xml' }, /contentFormat: tlv \(11542\)/],
      [{ servers: [{ ...PSK_SERVER, securityMode: 'rpk' }] }, /publicKeyOrIdentity: missing/],
    ];
    for (const [input, message] of cases) {
      assert.throws(
        () => parseBootstrapConfig(input),
        (err: Error) => err instanceof BootstrapConfigError && message.test(err.message),
        `${JSON.stringify(input)} should fail with ${message}`,
      );
    }
  });

  it('plans Security and Server instances, skipping the bootstrap account instance', function () {
    const config = parseBootstrapConfig({
      servers: [PSK_SERVER, { shortServerId: 102, uri: 'coap://backup.example.com', muteSend: false }],
      objects: { '/3303/0': { 5750: 'fridge' } },
    });
    const plan = buildPlan(config, MODEL, { bootstrapInstanceId: 1 });
    assert.deepEqual(
      plan.writes.map((write) => `${write.kind} ${write.path}`),
      [
        'security /0/0',
        'security /0/2',
        'server /1/0',
        'server /1/1',
        'acl /2/0',
        'acl /2/1',
        'acl /2/2',
        'acl /2/3',
        'acl /2/4',
        'object /3303/0',
      ],
    );
    assert.deepEqual(resourcesOf(plan.writes[0].node), {
      0: 'coaps://dm.example.com:5684',
      1: false,
      2: 0,
      3: Buffer.from('dev-1').toString('hex'),
      4: '',
      5: '000102030405060708090a0b0c0d0e0f',
      10: 101,
    });
    assert.deepEqual(resourcesOf(plan.writes[3].node), { 0: 102, 1: 86400, 6: true, 7: 'U', 23: false });
    // Each server owns its Server instance; both share the Device and the provisioned instance; both may create.
    assert.deepEqual(
      plan.writes.filter((write) => write.kind === 'acl').map((write) => resourcesOf(write.node)),
      [
        { 0: 1, 1: 0, 2: { 101: 15 }, 3: 101 },
        { 0: 1, 1: 1, 2: { 102: 15 }, 3: 102 },
        { 0: 3, 1: 0, 2: { 101: 7, 102: 7 }, 3: 101 },
        { 0: 3303, 1: 0, 2: { 101: 15, 102: 15 }, 3: 101 },
        { 0: 3303, 1: 65535, 2: { 101: 16, 102: 16 }, 3: 101 },
      ],
    );
    assert.deepEqual(plan.servers, [
      { shortServerId: 101, uri: PSK_SERVER.uri, securityMode: 'psk', securityInstanceId: 0, serverInstanceId: 0 },
      {
        shortServerId: 102,
        uri: 'coap://backup.example.com',
        securityMode: 'nosec',
        securityInstanceId: 2,
        serverInstanceId: 1,
      },
    ]);
  });

  it('writes explicit ACL entries, none for one server, and the bootstrap account when asked', function () {
    const explicit = buildPlan(
      parseBootstrapConfig({
        servers: [PSK_SERVER],
        acl: [{ path: '/3/0', rights: { 101: 'RWE' }, owner: 101 }],
        bootstrapServer: { uri: 'coap://bs.example.com:5685', clientHoldOffTime: 10, accountTimeout: 0 },
      }),
      MODEL,
    );
    assert.deepEqual(
      explicit.writes.map((write) => `${write.kind} ${write.path}`),
      ['bootstrapAccount /0/0', 'security /0/1', 'server /1/0', 'acl /2/0'],
    );
    assert.deepEqual(resourcesOf(explicit.writes[0].node), {
      0: 'coap://bs.example.com:5685',
      1: true,
      2: 3,
      3: '',
      4: '',
      5: '',
      11: 10,
      12: 0,
    });
    assert.deepEqual(resourcesOf(explicit.writes[3].node), { 0: 3, 1: 0, 2: { 101: 7 }, 3: 101 });
    const single = buildPlan(parseBootstrapConfig({ servers: [PSK_SERVER] }), MODEL);
    assert.equal(single.writes.filter((write) => write.kind === 'acl').length, 0);
  });

  it('finds an endpoint by name first, then by pattern in order, then *', async function () {
    const store = new MemoryBootstrapConfigStore(MODEL);
    const server = (id: number): unknown => ({ servers: [{ shortServerId: id, uri: 'coap://dm' }] });
    await store.set('*', server(1));
    await store.set('sensor-*', server(2));
    await store.set('/^meter-\\d+$/i', server(3));
    await store.set('sensor-7', server(4));
    const ssid = async (endpoint: string): Promise<number | undefined> =>
      (await store.get(endpoint))?.servers[0].shortServerId;
    assert.equal(await ssid('sensor-7'), 4);
    assert.equal(await ssid('sensor-8'), 2);
    assert.equal(await ssid('METER-12'), 3);
    assert.equal(await ssid('meter-x'), 1);
    assert.equal((await store.list()).length, 4);
    assert.equal(await store.remove('*'), true);
    assert.equal(await store.get('meter-x'), undefined);
    await assert.rejects(store.set('dev', { servers: [] }), BootstrapConfigError);
    assert.equal(endpointPattern('plain-name'), null);
    assert.throws(() => endpointPattern('/([/'), BootstrapConfigError);
  });
});
