import { strict as assert } from 'node:assert';
import { generateKeyPairSync } from 'node:crypto';
import { Lwm2mRequestError } from '../../lib/server/errors';
import { Lwm2mServer } from '../../lib/server/lwm2m-server';
import type { SecurityInfo } from '../../lib/server/security';
import {
  SecurityInfoError,
  parseSecurityFile,
  parseSecurityInfo,
  publicKeyFingerprint,
  securityInfoToPlain,
} from '../../lib/server/security';
import { MemorySecurityStore } from '../../lib/server/memory-security-store';
import type { SecurityIdentity } from '../../lib/transport/types';
import { CoapDevice } from '../peers/coap-device';
import { StampingTransport } from '../peers/stamping-transport';

describe('device credentials (security store)', function () {
  describe('parsing', function () {
    it('takes PSK, RPK and X.509 entries and says exactly what is wrong', function () {
      const psk = parseSecurityInfo({ endpoint: 'a', mode: 'PSK', identity: 'id-a', key: '0x0102030405' });
      assert.deepEqual(psk, { endpoint: 'a', mode: 'psk', identity: 'id-a', key: Buffer.from('0102030405', 'hex') });
      const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      const spki = publicKey.export({ type: 'spki', format: 'der' });
      const fromPem = parseSecurityInfo({
        endpoint: 'b',
        mode: 'rpk',
        publicKey: publicKey.export({ type: 'spki', format: 'pem' }),
      });
      assert.deepEqual(fromPem, { endpoint: 'b', mode: 'rpk', publicKey: spki });
      assert.deepEqual(parseSecurityInfo({ endpoint: 'b', mode: 'rpk', publicKey: spki.toString('base64') }), fromPem);
      assert.deepEqual(parseSecurityInfo({ endpoint: 'c', mode: 'x509' }), { endpoint: 'c', mode: 'x509' });

      const cases: Array<[unknown, RegExp]> = [
        [null, /must be an object/],
        [{ mode: 'psk' }, /need an endpoint name/],
        [{ endpoint: 'a', mode: 'psk', key: '0102' }, /needs an identity/],
        [{ endpoint: 'a', mode: 'psk', identity: 'i', key: 'zz' }, /must be hex text/],
        [{ endpoint: 'a', mode: 'psk', identity: 'i', key: '0102' }, /must be 4-64 bytes, not 2/],
        [{ endpoint: 'a', mode: 'psk', identity: 'i' }, /key is missing/],
        [{ endpoint: 'a', mode: 'oscore' }, /mode must be psk, rpk or x509/],
        [{ endpoint: 'b', mode: 'rpk' }, /needs the device's publicKey/],
        [{ endpoint: 'b', mode: 'rpk', publicKey: '00112233' }, /not a SubjectPublicKeyInfo/],
      ];
      for (const [input, message] of cases) assert.throws(() => parseSecurityInfo(input), message);
      const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' });
      assert.throws(() => parseSecurityInfo({ endpoint: 'r', mode: 'rpk', publicKey: rsa }), /must be EC P-256/);
    });

    it('reads JSON and CSV credential files, naming the entry or line at fault', function () {
      const json = JSON.stringify([
        { endpoint: 'a', mode: 'psk', identity: 'ia', key: '01020304' },
        { endpoint: 'c', mode: 'x509' },
      ]);
      assert.deepEqual(
        parseSecurityFile(json).map((info) => info.endpoint),
        ['a', 'c'],
      );
      const csv =
        'endpoint,mode,identity,key\n# batch 7\nsensor-1,psk,sensor-1,000102030405\n\nsensor-2,psk,s2,a0a1a2a3\n';
      const infos = parseSecurityFile(csv);
      assert.deepEqual(
        infos.map((info) => securityInfoToPlain(info, true)),
        [
          { endpoint: 'sensor-1', mode: 'psk', identity: 'sensor-1', key: '000102030405' },
          { endpoint: 'sensor-2', mode: 'psk', identity: 's2', key: 'a0a1a2a3' },
        ],
      );
      assert.deepEqual(securityInfoToPlain(infos[0]), { endpoint: 'sensor-1', mode: 'psk', identity: 'sensor-1' });
      assert.throws(() => parseSecurityFile('endpoint,mode,identity,key\nx,psk,x,01\n'), /line 2: endpoint "x"/);
      assert.throws(() => parseSecurityFile('[{"endpoint":"a"}]'), /entry 1: endpoint "a": mode must be/);
      assert.throws(() => parseSecurityFile('[{'), /not valid JSON/);
      assert.throws(() => parseSecurityFile('a,b\n1,2'), /header line/);
      assert.deepEqual(parseSecurityFile('  \n'), []);
    });
  });

  describe('memory store', function () {
    it('indexes by endpoint, PSK identity and public key; one identity per endpoint', async function () {
      const store = new MemorySecurityStore();
      const a: SecurityInfo = { endpoint: 'a', mode: 'psk', identity: 'id', key: Buffer.from('01020304', 'hex') };
      assert.equal(await store.add(a), undefined);
      assert.equal((await store.getByPskIdentity('id'))?.endpoint, 'a');
      assert.deepEqual(store.pskKeySync('id'), a.key);
      await assert.rejects(
        store.add({ endpoint: 'b', mode: 'psk', identity: 'id', key: Buffer.alloc(4) }),
        (err: Error) =>
          err instanceof SecurityInfoError && /PSK identity "id" already belongs to endpoint "a"/.test(err.message),
      );
      // Replacing the endpoint's own entry frees its old identity.
      const a2: SecurityInfo = { endpoint: 'a', mode: 'psk', identity: 'id2', key: Buffer.alloc(4, 7) };
      assert.deepEqual(await store.add(a2), a);
      assert.equal(await store.getByPskIdentity('id'), undefined);
      const spki = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({
        type: 'spki',
        format: 'der',
      });
      await store.add({ endpoint: 'r', mode: 'rpk', publicKey: spki });
      assert.equal((await store.getByPublicKey(Buffer.from(spki)))?.endpoint, 'r');
      assert.equal(publicKeyFingerprint(spki).length, 64);
      assert.equal((await store.list()).length, 2);
      assert.deepEqual(await store.remove('a'), a2);
      assert.equal(await store.getByPskIdentity('id2'), undefined);
      assert.equal(await store.remove('a'), undefined);
    });
  });

  describe('registration rules over plain and secure listeners', function () {
    let server: Lwm2mServer;
    let secure: StampingTransport;
    const devices: CoapDevice[] = [];

    async function device(name: string, over: 'plain' | 'secure', identity?: SecurityIdentity): Promise<CoapDevice> {
      const port = over === 'plain' ? server.address!.port : server.secureAddress!.port;
      const created = new CoapDevice(name, port);
      await created.start();
      devices.push(created);
      if (identity) secure.sessions.set(created.port, identity);
      return created;
    }

    beforeEach(async function () {
      secure = new StampingTransport();
      server = new Lwm2mServer({ address: '127.0.0.1', port: 0, secureTransport: secure });
      await server.start();
      await server.securityStore.add({ endpoint: 'dev-a', mode: 'psk', identity: 'id-a', key: Buffer.alloc(16, 1) });
      await server.securityStore.add({ endpoint: 'dev-x', mode: 'x509' });
    });
    afterEach(async function () {
      for (const created of devices.splice(0)) await created.stop();
      await server.stop();
    });

    it('accepts a PSK device as the endpoint its identity belongs to, and reaches it over the secure route', async function () {
      const a = await device('dev-a', 'secure', { mode: 'psk', identity: 'id-a' });
      a.resources.set('/3/0/0', { payload: 'ACME', contentFormat: 0 });
      assert.equal((await a.tryRegister('ep=dev-a&lt=60&lwm2m=1.1')).code, '2.01');
      const registration = await server.getRegistration('dev-a');
      assert.deepEqual(registration?.security, { mode: 'psk', identity: 'id-a' });
      assert.equal(registration?.peerKey, `coaps://127.0.0.1:${a.port}`);
      assert.equal((await server.read('dev-a', '/3/0/0')).value, 'ACME');
      assert.equal(await a.update('lt=90'), '2.04');
      assert.equal(await a.deregister(), '2.02');
    });

    it('a 1.1 Register without ep takes the endpoint name from the identity', async function () {
      const a = await device('whatever', 'secure', { mode: 'psk', identity: 'id-a' });
      assert.equal((await a.tryRegister('lt=60&lwm2m=1.1')).code, '2.01');
      assert.ok(await server.getRegistration('dev-a'));
      const x = await device('whatever', 'secure', { mode: 'x509', identity: 'meter-7' });
      assert.equal((await x.tryRegister('lt=60&lwm2m=1.1')).code, '2.01');
      assert.ok(await server.getRegistration('meter-7'));
    });

    it('answers 4.03 with the reason to an identity that is not the endpoint, and to plain CoAP for a secured endpoint', async function () {
      const wrongEndpoint = await device('dev-b', 'secure', { mode: 'psk', identity: 'id-a' });
      assert.deepEqual(await wrongEndpoint.tryRegister('ep=dev-b&lt=60'), {
        code: '4.03',
        location: undefined,
        diagnostic: 'PSK identity "id-a" belongs to endpoint "dev-a", not "dev-b"',
      });
      const plain = await device('dev-a', 'plain');
      const refused = await plain.tryRegister('ep=dev-a&lt=60');
      assert.equal(refused.code, '4.03');
      assert.equal(refused.diagnostic, 'endpoint "dev-a" has psk credentials: register over DTLS');
      const cn = await device('dev-y', 'secure', { mode: 'x509', identity: 'someone-else' });
      assert.equal(
        (await cn.tryRegister('ep=dev-y&lt=60')).diagnostic,
        'certificate CN "someone-else" does not match endpoint "dev-y"',
      );
      const pinned = await device('dev-a', 'secure', { mode: 'x509', identity: 'dev-a' });
      assert.equal(
        (await pinned.tryRegister('ep=dev-a&lt=60')).diagnostic,
        'endpoint "dev-a" has psk credentials, not a certificate',
      );
      const forgotten = await device('dev-z', 'secure', { mode: 'psk', identity: 'id-gone' });
      assert.equal((await forgotten.tryRegister('ep=dev-z&lt=60')).code, '4.03');
      assert.equal((await server.listRegistrations()).length, 0);
      // An endpoint with no credentials may still register over plain CoAP.
      assert.equal((await (await device('open', 'plain')).tryRegister('ep=open&lt=60')).code, '2.01');
    });

    it('lets only the registering channel update or de-register (a registration id is not a key)', async function () {
      const a = await device('dev-a', 'secure', { mode: 'psk', identity: 'id-a' });
      await a.tryRegister('ep=dev-a&lt=60');
      const intruder = await device('dev-a', 'plain');
      intruder.location = a.location;
      assert.equal(await intruder.update('lt=5'), '4.03');
      assert.equal(await intruder.deregister(), '4.03');
      const otherIdentity = await device('dev-a', 'secure', { mode: 'x509', identity: 'dev-a' });
      otherIdentity.location = a.location;
      assert.equal(await otherIdentity.deregister(), '4.03');
      assert.equal((await server.getRegistration('dev-a'))?.lifetime, 60);
    });

    it('another identity handshaking from the same address and port gets nothing meant for the registered one', async function () {
      const a = await device('dev-a', 'secure', { mode: 'psk', identity: 'id-a' });
      a.resources.set('/3/0/0', { payload: 'A-DATA', contentFormat: 0 });
      await a.tryRegister('ep=dev-a&lt=60&lwm2m=1.1');
      // A's session ends; a device with another identity handshakes from the same address and port.
      secure.sessions.set(a.port, { mode: 'x509', identity: 'dev-b' });
      await assert.rejects(
        server.read('dev-a', '/3/0/0'),
        (err: Error) => (err as Lwm2mRequestError).code === 'no-session',
      );
      assert.equal(a.requests.filter((request) => request.method === 'GET').length, 0, 'nothing was sent');
      // Its Send is not filed under dev-a either.
      assert.equal(await a.sendData('[{"n":"/3/0/9","v":1}]', 110), '4.04');
      // The right identity again: requests go through.
      secure.sessions.set(a.port, { mode: 'psk', identity: 'id-a' });
      assert.equal((await server.read('dev-a', '/3/0/0')).value, 'A-DATA');
    });

    it('fails a request at once, with the reason, when the device has no DTLS session', async function () {
      const a = await device('dev-a', 'secure', { mode: 'psk', identity: 'id-a' });
      await a.tryRegister('ep=dev-a&lt=60');
      secure.sessions.delete(a.port);
      await assert.rejects(
        server.read('dev-a', '/3/0/0'),
        (err: Error) =>
          err instanceof Lwm2mRequestError &&
          err.code === 'no-session' &&
          /no DTLS session with the device/.test(err.message),
      );
    });
  });

  it('runs DTLS-only when the plain listener is off', async function () {
    const secure = new StampingTransport();
    const server = new Lwm2mServer({ address: '127.0.0.1', port: 0, plain: false, secureTransport: secure });
    try {
      const bound = await server.start();
      assert.deepEqual(server.secureAddress, bound);
      const device = new CoapDevice('solo', bound.port);
      await device.start();
      secure.sessions.set(device.port, { mode: 'x509', identity: 'solo' });
      assert.equal((await device.tryRegister('ep=solo&lt=60')).code, '2.01');
      await device.stop();
    } finally {
      await server.stop();
    }
  });
});

describe('a DTLS session that moves (Connection ID after a NAT rebinding)', function () {
  it('keeps its key: requests reach the new address and the registration shows it', async function () {
    const secure = new StampingTransport();
    let server = new Lwm2mServer({ address: '127.0.0.1', port: 0, plain: false, secureTransport: secure });
    const devices: CoapDevice[] = [];
    try {
      const { port } = await server.start();
      await server.securityStore.add({ endpoint: 'roamer', mode: 'psk', identity: 'roamer', key: Buffer.alloc(16, 3) });
      const before = new CoapDevice('roamer', port);
      const after = new CoapDevice('roamer', port);
      devices.push(before, after);
      await before.start();
      await after.start();
      after.resources.set('/3/0/0', { payload: 'moved', contentFormat: 0 });
      secure.sessions.set(before.port, { mode: 'psk', identity: 'roamer' });
      assert.equal((await before.tryRegister('ep=roamer&lt=60')).code, '2.01');
      const key = (await server.getRegistration('roamer'))!.peerKey;

      const moved = new Promise<unknown[]>((resolve) => server.once('moved', (...args) => resolve(args)));
      secure.move(before.port, after.port);
      await moved;
      const registration = await server.getRegistration('roamer');
      assert.equal(registration?.port, after.port);
      assert.equal(registration?.peerKey, key, 'the key stays the one the session started with');
      assert.equal((await server.read('roamer', '/3/0/0')).value, 'moved');
      // An Update from the new address is the same session: accepted, key unchanged.
      after.location = before.location;
      assert.equal(await after.update('lt=90'), '2.04');
      assert.equal((await server.getRegistration('roamer'))?.peerKey, key);

      // A redeploy: the session is taken over by the next listener at its new address; the key it started
      // with is restored from the registration before the first datagram.
      await server.stop();
      const next = new StampingTransport(port);
      next.sessions.set(after.port, { mode: 'psk', identity: 'roamer' });
      server = new Lwm2mServer({
        address: '127.0.0.1',
        port,
        plain: false,
        secureTransport: next,
        registrationStore: server.options.registrationStore,
        securityStore: server.options.securityStore,
      });
      await server.start();
      assert.equal((await server.read('roamer', '/3/0/0')).value, 'moved');
      assert.equal(await after.update('lt=60'), '2.04');
      assert.equal((await server.getRegistration('roamer'))?.peerKey, key);
    } finally {
      for (const device of devices) await device.stop();
      await server.stop();
    }
  });
});
