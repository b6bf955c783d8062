import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { generate, parse } from 'coap-packet';
import { Lwm2mServer } from '../../lib/server/lwm2m-server';
import type { Notification } from '../../lib/server/observation-service';
import { Lwm2mRequestError } from '../../lib/server/errors';
import type { Registration } from '../../lib/server/registration';
import { waitFor as until } from '../client/helpers';
import { CoapDevice } from '../peers/coap-device';

const TEXT = 0;
const TLV = 11542;

function waitFor<T>(
  emitter: Lwm2mServer,
  event: 'registered' | 'updated' | 'deregistered' | 'expired' | 'notification',
): Promise<T> {
  return once(emitter as never, event).then((args) => args[0] as T);
}

/** Sends `packet` `repeat` times from one socket; resolves with the answers, one per copy sent. */
async function rawExchange(port: number, packet: Parameters<typeof generate>[0], repeat = 1) {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  const answers: ReturnType<typeof parse>[] = [];
  socket.on('message', (message) => answers.push(parse(message)));
  const bytes = generate(packet);
  try {
    for (let i = 0; i < repeat; i++) socket.send(bytes, port, '127.0.0.1');
    await until(() => answers.length >= repeat, 10_000, `${repeat} answer(s)`);
  } finally {
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
  return answers;
}

describe('LwM2M server end to end (node-coap as the device, real UDP)', function () {
  let server: Lwm2mServer;
  let port: number;
  let device: CoapDevice;

  beforeEach(async function () {
    server = new Lwm2mServer({
      address: '127.0.0.1',
      port: 0,
      lifetimeGraceSeconds: 0,
      coap: { ackTimeoutMs: 150, maxRetransmit: 2 },
    });
    port = (await server.start()).port;
    device = new CoapDevice('dev-1', port);
    await device.start();
    device.resources.set('/3303/0/5700', { contentFormat: TEXT, payload: '23.5' });
    device.resources.set('/3/0', {
      contentFormat: TLV,
      payload: Buffer.from('c4004163' + '6d65' + 'c10964', 'hex'),
    });
  });

  afterEach(async function () {
    await device.stop();
    await server.stop();
  });

  it('registers a device and reports what it announced', async function () {
    const registered = waitFor<Registration>(server, 'registered');
    await device.register(
      'lt=60&lwm2m=1.1&b=U',
      '</>;rt="oma.lwm2m";ct="60 110 112 11542",</1/0>,</3/0>,</3303/0>;ver=1.1',
    );
    const registration = await registered;
    assert.equal(registration.endpoint, 'dev-1');
    assert.equal(registration.lifetime, 60);
    assert.equal(registration.lwm2mVersion, '1.1');
    assert.equal(registration.binding, 'U');
    assert.equal(registration.port, device.port);
    assert.deepEqual(registration.supportedContentFormats, [60, 110, 112, 11542]);
    assert.deepEqual(registration.objects[3303], { instances: [0], version: '1.1' });
    assert.equal(device.location, `/rd/${registration.id}`);
    assert.equal((await server.getRegistration('dev-1'))?.id, registration.id);
  });

  it('reads a single resource as a typed value and an instance as an object', async function () {
    await device.register('lt=60&lwm2m=1.0');
    const single = await server.read('dev-1', '/3303/0/5700');
    assert.equal(single.value, 23.5);
    assert.equal(single.code, '2.05');
    assert.equal(single.endpoint, 'dev-1');
    const instance = await server.read('dev-1', '/3/0');
    const value = instance.value as { byName: Record<string, unknown>; byId: Record<string, unknown> };
    assert.equal(value.byName.Manufacturer, 'Acme');
    assert.equal(value.byId['9'], 100);
    assert.equal(instance.contentFormat, TLV);
    // A 1.0 device is asked for TLV, the format every 1.0 client must support.
    const get = device.requests.filter((request) => request.method === 'GET' && request.url === '/3/0')[0];
    assert.equal(get.accept, TLV);
    // Resource instances are addressable from 1.1 on: a 1.0 device is not asked.
    await assert.rejects(server.read('dev-1', '/3/0/7/0'), /LwM2M 1\.1/);
  });

  it('reports a device error with its CoAP code', async function () {
    await device.register();
    await assert.rejects(server.read('dev-1', '/3303/0/5800'), (err: Lwm2mRequestError) => {
      assert.equal(err.code, '4.04');
      assert.match(err.message, /4\.04 Not Found/);
      return true;
    });
    await assert.rejects(server.read('nobody', '/3/0'), (err: Lwm2mRequestError) => err.code === 'not-registered');
    await assert.rejects(server.read('dev-1', '/3/x'), (err: Lwm2mRequestError) => err.code === 'bad-request');
    await assert.rejects(server.read('dev-1', '/'), (err: Lwm2mRequestError) => err.code === 'bad-request');
  });

  it('writes and executes', async function () {
    await device.register('lt=60&lwm2m=1.0');
    const written = await server.write('dev-1', '/3303/0/5701', 'Cel');
    assert.equal(written.code, '2.04');
    const put = device.requests.find((request) => request.method === 'PUT');
    assert.ok(put, 'the device received a PUT');
    assert.equal(put.url, '/3303/0/5701');
    const executed = await server.execute('dev-1', '/3/0/4');
    assert.equal(executed.code, '2.04');
    assert.ok(device.requests.some((request) => request.method === 'POST' && request.url === '/3/0/4'));
    await assert.rejects(server.execute('dev-1', '/3/0/0'), /not executable/);
  });

  it('observes, delivers notifications in order, and cancels on the device', async function () {
    await device.register('lt=60&lwm2m=1.1');
    const observed = await server.observe('dev-1', '/3303/0/5700', { owner: 'node-a' });
    assert.equal(observed.value, 23.5);
    assert.equal(observed.joined, false);
    const next = waitFor<Notification>(server, 'notification');
    assert.equal(device.notify('/3303/0/5700', '24.25'), 1);
    const notification = await next;
    assert.equal(notification.value, 24.25);
    assert.equal(notification.endpoint, 'dev-1');
    assert.deepEqual(notification.owners, ['node-a']);

    // A second owner joins the same device observation; cancelling one keeps it alive.
    const joined = await server.observe('dev-1', '/3303/0/5700', { owner: 'node-b' });
    assert.equal(joined.joined, true);
    assert.equal(joined.observationId, observed.observationId);
    assert.equal(await server.cancelObservation('dev-1', '/3303/0/5700', 'node-a'), true);
    assert.equal((await server.listObservations('dev-1')).length, 1);
    assert.equal(await server.cancelObservation('dev-1', '/3303/0/5700', 'node-b'), true);
    assert.equal((await server.listObservations('dev-1')).length, 0);
    // Active cancel: a GET with Observe=1 and the observation's token went to the device.
    assert.ok(device.requests.some((request) => request.method === 'GET' && request.observe === 1));
    // node-coap keeps its observer until a notification is refused: the next one gets a RST.
    device.notify('/3303/0/5700', '25');
    await until(() => device.observerCount('/3303/0/5700') === 0, 10_000, 'the device to drop its observer');
    assert.equal(device.observerCount('/3303/0/5700'), 0, 'the device no longer has an observer');
  });

  it('puts attributes in the Observe request for 1.2, writes them first for 1.0/1.1', async function () {
    await device.register('lt=60&lwm2m=1.2');
    await server.observe('dev-1', '/3303/0/5700', { owner: 'a', attributes: { pmin: 5, pmax: 30 } });
    const observe = device.requests.find((request) => request.observe === 0);
    assert.equal(observe?.url, '/3303/0/5700?pmin=5&pmax=30');
    assert.equal(device.requests.filter((request) => request.method === 'PUT').length, 0);
    await server.cancelObservation('dev-1', '/3303/0/5700');

    await device.register('lt=60&lwm2m=1.1');
    device.requests.length = 0;
    const first = await server.observe('dev-1', '/3303/0/5700', { owner: 'a', attributes: { pmin: 5 } });
    assert.equal(first.attributesReplaced, undefined);
    assert.deepEqual(
      device.requests.map((request) => `${request.method} ${request.url}`),
      ['PUT /3303/0/5700?pmin=5', 'GET /3303/0/5700'],
    );
    // A second owner asking other attributes replaces them on the device: it is told.
    const second = await server.observe('dev-1', '/3303/0/5700', { owner: 'b', attributes: { pmin: 10 } });
    assert.deepEqual(second.attributesReplaced, { owner: 'a', attributes: ['pmin=5'] });
    await assert.rejects(
      server.observe('dev-1', '/3303/0/5700', { owner: 'c', attributes: { edge: 1 } }),
      /not part of LwM2M 1\.1/,
    );
  });

  it('Discover with depth (1.2 only)', async function () {
    device.handler = (request) =>
      request.url.startsWith('/3/0') && request.accept === 40
        ? { code: '2.05', contentFormat: 40, payload: '</3/0>,</3/0/0>,</3/0/9>;gt=50' }
        : undefined;
    await device.register('lt=60&lwm2m=1.1');
    await assert.rejects(server.discover('dev-1', '/3/0', { depth: 1 }), /depth is LwM2M 1\.2/);
    await device.register('lt=60&lwm2m=1.2');
    const result = await server.discover('dev-1', '/3/0', { depth: 1 });
    assert.equal(device.requests.at(-1)?.url, '/3/0?depth=1');
    assert.deepEqual(
      result.links.map((link) => link.uri),
      ['/3/0', '/3/0/0', '/3/0/9'],
    );
  });

  it('re-establishes observations when the device registers again', async function () {
    await device.register();
    await server.observe('dev-1', '/3303/0/5700', { owner: 'node-a' });
    const observeRequests = () => device.requests.filter((request) => request.observe === 0).length;
    assert.equal(observeRequests(), 1);
    const registered = waitFor<Registration>(server, 'registered');
    await device.register();
    await registered;
    await until(() => observeRequests() >= 2, 10_000, 'a second Observe');
    assert.equal(observeRequests(), 2, 'a new Observe was sent after the new registration');
    const observations = await server.listObservations('dev-1');
    assert.equal(observations.length, 1);
    assert.deepEqual(observations[0].owners, ['node-a']);
  });

  it('updates, de-registers and expires registrations', async function () {
    await device.register('lt=60');
    const updated = waitFor<Registration>(server, 'updated');
    assert.equal(await device.update('lt=120'), '2.04');
    assert.equal((await updated).lifetime, 120);
    const deregistered = waitFor<Registration>(server, 'deregistered');
    assert.equal(await device.deregister(), '2.02');
    assert.equal((await deregistered).endpoint, 'dev-1');
    assert.equal(await server.getRegistration('dev-1'), undefined);
    assert.equal(await device.update(), '4.04');

    const expired = waitFor<Registration>(server, 'expired');
    await device.register('lt=1');
    assert.equal((await expired).endpoint, 'dev-1');
    assert.equal(await server.getRegistration('dev-1'), undefined);
  });

  it('answers 4.12 to an unknown LwM2M version and 4.00 to a Register without endpoint', async function () {
    const unknownVersion = await rawExchange(port, {
      confirmable: true,
      code: '0.02',
      messageId: 100,
      token: Buffer.from([1, 2]),
      options: [
        { name: 'Uri-Path', value: Buffer.from('rd') },
        { name: 'Uri-Query', value: Buffer.from('ep=x') },
        { name: 'Uri-Query', value: Buffer.from('lwm2m=2.0') },
      ],
      payload: Buffer.from('</3/0>'),
    });
    assert.equal(unknownVersion[0].code, '4.12');
    const noEndpoint = await rawExchange(port, {
      confirmable: true,
      code: '0.02',
      messageId: 101,
      token: Buffer.from([1, 3]),
      options: [{ name: 'Uri-Path', value: Buffer.from('rd') }],
      payload: Buffer.from('</3/0>'),
    });
    assert.equal(noEndpoint[0].code, '4.00');
  });

  it('creates one registration for a retransmitted Register', async function () {
    let count = 0;
    server.on('registered', () => count++);
    const answers = await rawExchange(
      port,
      {
        confirmable: true,
        code: '0.02',
        messageId: 7,
        token: Buffer.from([9]),
        options: [
          { name: 'Uri-Path', value: Buffer.from('rd') },
          { name: 'Uri-Query', value: Buffer.from('ep=dup') },
        ],
        payload: Buffer.from('</3/0>'),
      },
      3,
    );
    assert.equal(count, 1);
    assert.ok(answers.length >= 1);
    const locations = answers.map((answer) =>
      answer.options
        .filter((option) => option.name === 'Location-Path')
        .map((option) => String(option.value))
        .join('/'),
    );
    assert.equal(new Set(locations).size, 1, 'every answer carries the same location');
  });

  it('fails a request promptly when the device does not answer', async function () {
    await device.register();
    device.handler = () => undefined;
    await device.stop();
    const started = Date.now();
    await assert.rejects(server.read('dev-1', '/3303/0/5700'), (err: Lwm2mRequestError) => err.code === 'timeout');
    // 150 ms ack timeout, 2 retransmissions: well under EXCHANGE_LIFETIME (247 s).
    assert.ok(Date.now() - started < 5000);
    device = new CoapDevice('dev-1', port);
    await device.start();
  });
});

describe('libcoap coap-client as a registering device', function () {
  let server: Lwm2mServer;
  let port: number;
  const run = (args: string[]) =>
    new Promise<{ stdout: string; stderr: string }>((resolve, reject) =>
      execFile('coap-client-notls', args, { timeout: 10000 }, (err, stdout, stderr) =>
        err ? reject(err) : resolve({ stdout, stderr }),
      ),
    );

  before(async function () {
    try {
      await run(['-h']).catch((err: NodeJS.ErrnoException & { code?: unknown }) => {
        if (err.code === 'ENOENT') throw err;
      });
    } catch {
      this.skip();
    }
  });

  beforeEach(async function () {
    server = new Lwm2mServer({ address: '127.0.0.1', port: 0 });
    port = (await server.start()).port;
  });
  afterEach(async () => server.stop());

  it('Register, Update and De-register with coap-client-notls', async function () {
    const registered = waitFor<Registration>(server, 'registered');
    await run([
      '-m',
      'post',
      '-t',
      '40',
      '-e',
      '</1/0>,</3/0>,</3303/0>',
      `coap://127.0.0.1:${port}/rd?ep=libcoap-1&lt=300&b=U`,
    ]);
    const registration = await registered;
    assert.equal(registration.endpoint, 'libcoap-1');
    assert.deepEqual(Object.keys(registration.objects), ['1', '3', '3303']);
    const updated = waitFor<Registration>(server, 'updated');
    await run(['-m', 'post', `coap://127.0.0.1:${port}/rd/${registration.id}?lt=600`]);
    assert.equal((await updated).lifetime, 600);
    const deregistered = waitFor<Registration>(server, 'deregistered');
    await run(['-m', 'delete', `coap://127.0.0.1:${port}/rd/${registration.id}`]);
    assert.equal((await deregistered).id, registration.id);
    // coap-client prints an error code and its diagnostic payload.
    const { stdout, stderr } = await run(['-m', 'post', '-e', '</3/0>', `coap://127.0.0.1:${port}/rd?ep=x&lwm2m=9.9`]);
    assert.match(stdout + stderr, /4\.12 unsupported LwM2M version "9\.9"/);
  });
});

describe('event order: registered and updated come after the device has its answer', function () {
  it('a request made from a registered or updated listener reaches the device after its 2.01 / 2.04', async function () {
    const server = new Lwm2mServer({ address: '127.0.0.1', port: 0 });
    const { port } = await server.start();
    const device = new CoapDevice('ordered', port);
    await device.start();
    try {
      device.resources.set('/3/0/0', { payload: 'ACME', contentFormat: TEXT });
      const seenAt: Array<string | undefined> = [];
      // What the device knows when the server's GET arrives: its location comes with the 2.01.
      device.handler = (request) => {
        if (request.method === 'GET') seenAt.push(device.location);
        return undefined;
      };
      const reads: Promise<unknown>[] = [];
      server.on('registered', (registration: Registration) => reads.push(server.read(registration.endpoint, '/3/0/0')));
      server.on('updated', (registration: Registration) => reads.push(server.read(registration.endpoint, '/3/0/0')));
      await device.register();
      const location = device.location;
      await device.update('lt=120');
      await Promise.all(reads);
      // node-coap resolves the Register before it handles the next datagram: the location is set by then.
      assert.deepEqual(seenAt, [location, location]);
    } finally {
      await device.stop();
      await server.stop();
    }
  });
});

describe('serve(): other paths on the server endpoint', function () {
  it('answers below its segment (block-wise for a large body), 4.04 otherwise, and refuses LwM2M paths', async function () {
    const server = new Lwm2mServer({ address: '127.0.0.1', port: 0 });
    const { port } = await server.start();
    const socket = dgram.createSocket('udp4');
    try {
      const image = Buffer.alloc(3000, 7);
      const stop = server.serve('fw', (request) =>
        request.pathSegments[1] === 'job-1' ? { code: '2.05', contentFormat: 42, payload: image } : undefined,
      );
      assert.throws(() => server.serve('rd', () => undefined), /an LwM2M path/);
      assert.throws(() => server.serve('fw', () => undefined), /served already/);
      await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
      const ask = async (path: string[]) => {
        const options = path.map((segment) => ({ name: 'Uri-Path', value: Buffer.from(segment) }));
        socket.send(
          generate({
            messageId: 1 + Math.floor(Math.random() * 60000),
            token: Buffer.from([1]),
            code: '0.01',
            confirmable: true,
            options,
          } as never),
          port,
          '127.0.0.1',
        );
        const [message] = (await once(socket, 'message')) as [Buffer];
        return parse(message);
      };
      const first = await ask(['fw', 'job-1']);
      assert.equal(first.code, '2.05');
      assert.ok(
        first.options.some((option) => option.name === 'Block2'),
        'a large body goes block-wise',
      );
      assert.ok(first.payload.length < image.length);
      assert.equal((await ask(['fw', 'other'])).code, '4.04');
      stop();
      assert.equal((await ask(['fw', 'job-1'])).code, '4.04');
    } finally {
      socket.close();
      await server.stop();
    }
  });
});
