import { strict as assert } from 'node:assert';
import type { Lwm2mServerConfigNode } from '../../nodes/shared/server-config';
import { resetHosts } from '../../nodes/shared/server-host';
import { helper, nextError, nextMessage } from './helper';

const nodes = [
  require('../../nodes/lwm2m-server'),
  require('../../nodes/lwm2m-credentials'),
  require('../../nodes/lwm2m-register-in'),
];

const KEY = '73656e736f722d312d6b65792d313233';

function flow(action = ''): Record<string, unknown>[] {
  return [
    { id: 'f1', type: 'tab', label: 'test' },
    { id: 'srv', type: 'lwm2m-server', address: '127.0.0.1', port: '0' },
    { id: 'cred', type: 'lwm2m-credentials', z: 'f1', server: 'srv', action, wires: [['out']] },
    { id: 'out', type: 'helper', z: 'f1' },
  ];
}

async function run(msg: Record<string, unknown>): Promise<Record<string, unknown>> {
  const answer = nextMessage(helper.getNode('out'));
  helper.getNode('cred').receive(msg);
  return answer;
}

describe('lwm2m-credentials node', function () {
  afterEach(async function () {
    await helper.unload();
    await resetHosts();
  });

  it('adds one entry, a batch, or CSV text; lists without keys; gets; removes', async function () {
    await helper.load(nodes, flow());
    const added = await run({
      action: 'add',
      payload: { endpoint: 'sensor-1', mode: 'psk', identity: 'sensor-1', key: KEY },
    });
    assert.deepEqual(added.payload, { added: ['sensor-1'], replaced: [] });
    const csv = 'endpoint,mode,identity,key\nsoil-01,psk,soil-01,a0a1a2a3\nsoil-02,psk,soil-02,b0b1b2b3\n';
    assert.deepEqual((await run({ action: 'add', payload: csv })).payload, {
      added: ['soil-01', 'soil-02'],
      replaced: [],
    });
    assert.deepEqual((await run({ action: 'add', payload: [{ endpoint: 'soil-01', mode: 'x509' }] })).payload, {
      added: ['soil-01'],
      replaced: ['soil-01'],
    });
    assert.deepEqual((await run({ action: 'list' })).payload, [
      { endpoint: 'sensor-1', mode: 'psk', identity: 'sensor-1' },
      { endpoint: 'soil-02', mode: 'psk', identity: 'soil-02' },
      { endpoint: 'soil-01', mode: 'x509' },
    ]);
    assert.deepEqual((await run({ action: 'get', endpoint: 'sensor-1' })).payload, {
      endpoint: 'sensor-1',
      mode: 'psk',
      identity: 'sensor-1',
    });
    assert.equal((await run({ action: 'get', payload: 'nobody' })).payload, null);
    assert.deepEqual((await run({ action: 'remove', payload: ['sensor-1', 'nobody'] })).payload, {
      removed: ['sensor-1'],
    });
    // The store is the server's: what the flow added is what the DTLS handshake will look up.
    const config = helper.getNode('srv') as unknown as Lwm2mServerConfigNode;
    assert.equal(await config.server.securityStore.getByPskIdentity('sensor-1'), undefined);
    assert.equal((await config.server.securityStore.getByPskIdentity('soil-02'))?.key.toString('hex'), 'b0b1b2b3');
  });

  it('refuses a bad batch whole, with the reason, for a Catch node', async function () {
    await helper.load(nodes, flow('add'));
    const cred = helper.getNode('cred');
    await run({ payload: { endpoint: 'a', mode: 'psk', identity: 'shared', key: '01020304' } });
    const cases: Array<[unknown, RegExp]> = [
      [
        [
          { endpoint: 'b', mode: 'psk', identity: 'b', key: '01020304' },
          { endpoint: 'c', mode: 'psk', identity: 'shared', key: '01020304' },
        ],
        /PSK identity "shared" already belongs to endpoint "a"/,
      ],
      [
        [
          { endpoint: 'd', mode: 'psk', identity: 'twice', key: '01020304' },
          { endpoint: 'e', mode: 'psk', identity: 'twice', key: '01020304' },
        ],
        /PSK identity "twice" already belongs to endpoint "d"/,
      ],
      [[{ endpoint: 'f', mode: 'psk', identity: 'f', key: 'xyz' }], /entry 1: endpoint "f": the PSK key must be hex/],
      ['endpoint,mode,identity,key\ng,psk,g,0102\n', /line 2: endpoint "g": the PSK key must be 4-64 bytes/],
      [42, /msg.payload must be device credentials/],
    ];
    for (const [payload, reason] of cases) {
      const failed = nextError(cred);
      cred.receive({ payload });
      const [error] = await failed;
      assert.match(error.message, reason);
    }
    const config = helper.getNode('srv') as unknown as Lwm2mServerConfigNode;
    assert.deepEqual(
      (await config.server.securityStore.list()).map((info) => info.endpoint),
      ['a'],
    );
  });

  it('needs an action and an endpoint name', async function () {
    await helper.load(nodes, flow());
    const cred = helper.getNode('cred');
    let failed = nextError(cred);
    cred.receive({ payload: {} });
    assert.match((await failed)[0].message, /msg.action must be one of add, remove, get, list/);
    failed = nextError(cred);
    cred.receive({ action: 'remove' });
    assert.match((await failed)[0].message, /an endpoint name is needed/);
  });

  it('keeps the credentials across a redeploy (they belong to the server)', async function () {
    await helper.load(nodes, flow('add'));
    await run({ payload: { endpoint: 'keep', mode: 'psk', identity: 'keep', key: KEY } });
    await helper.unload();
    await helper.load(nodes, flow('list'));
    assert.deepEqual((await run({})).payload, [{ endpoint: 'keep', mode: 'psk', identity: 'keep' }]);
  });
});
