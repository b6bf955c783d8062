/**
 * Our client against servers we did not write: node-coap plays the LwM2M server. It checks the Register
 * request byte by byte (RFC 7252 header and options, LwM2M query and link payload), then asks the device
 * with GET / PUT / POST / DELETE / Observe through its own agent and checks the answers. Send (POST /dp)
 * is checked the same way: our server does not handle /dp yet (it answers 4.04).
 */
import { strict as assert } from 'node:assert';
import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { parse as parsePacket } from 'coap-packet';
import * as coap from 'coap';
import { Lwm2mClient } from '../../lib/client';
import { decodeNode, parseLinkFormat, parseSenmlCbor, parseSenmlJson } from '../../lib/content';
import { ObjectModel } from '../../lib/model/object-model';
import { LwM2mPath } from '../../lib/model/path';
import { FAST_COAP, sleep, waitFor } from './helpers';

const optionConverter = require('coap/dist/lib/option_converter') as { toBinary(name: string, value: unknown): Buffer };

type NodeCoapIncoming = InstanceType<typeof coap.IncomingMessage>;
type NodeCoapOutgoing = InstanceType<typeof coap.OutgoingMessage>;

const model = ObjectModel.withBuiltins();

/** An option of a node-coap message as a number (node-coap turns known content formats into names). */
function uintOption(message: NodeCoapIncoming, name: string): number | undefined {
  const option = (message._packet.options ?? []).find((item) => item.name === name);
  if (!option) return undefined;
  if (typeof option.value === 'number') return option.value;
  const bytes = Buffer.isBuffer(option.value) ? option.value : optionConverter.toBinary(name, option.value);
  return bytes.length === 0 ? 0 : bytes.readUIntBE(0, bytes.length);
}

interface Recorded {
  bytes: Buffer;
  req: NodeCoapIncoming;
}

/** A node-coap server and agent on one socket, recording every datagram that reaches it. */
class NodeCoapLwm2mServer {
  readonly socket = dgram.createSocket('udp4');
  readonly datagrams: Buffer[] = [];
  readonly requests: Recorded[] = [];
  server!: coap.Server;
  agent!: coap.Agent;
  handler: (req: NodeCoapIncoming, res: NodeCoapOutgoing) => void = (_req, res) => {
    res.code = '4.04';
    res.end();
  };

  get port(): number {
    return (this.socket.address() as AddressInfo).port;
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.socket.bind(0, '127.0.0.1', () => resolve()));
    this.socket.on('message', (message) => this.datagrams.push(Buffer.from(message)));
    this.server = coap.createServer({ type: 'udp4' });
    this.server.on('request', (req: NodeCoapIncoming, res: NodeCoapOutgoing) => {
      this.requests.push({ bytes: Buffer.from(req._packet.payload ?? []), req });
      this.handler(req, res);
    });
    await new Promise<void>((resolve) => this.server.listen(this.socket as never, () => resolve()));
    this.agent = new coap.Agent({ socket: this.socket as never });
  }

  /** A request to the device through the agent. */
  ask(
    port: number,
    params: Record<string, unknown>,
    setup?: (req: NodeCoapOutgoing) => void,
    payload?: Buffer | string,
  ): Promise<NodeCoapIncoming> {
    return new Promise((resolve, reject) => {
      const req = coap.request({ hostname: '127.0.0.1', port, agent: this.agent, ...params } as never);
      setup?.(req);
      req.on('response', (res: NodeCoapIncoming) => resolve(res));
      req.on('error', reject);
      req.on('timeout', reject);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await new Promise<void>((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve();
      }
    });
  }
}

/** The raw Register datagram: checks the RFC 7252 header and option encoding by hand. */
function checkRegisterBytes(bytes: Buffer): { options: Array<[number, Buffer]>; payload: Buffer } {
  assert.equal(bytes[0] >> 6, 1, 'CoAP version 1');
  assert.equal((bytes[0] >> 4) & 3, 0, 'confirmable');
  const tkl = bytes[0] & 15;
  assert.ok(tkl >= 1 && tkl <= 8, `token length ${tkl}`);
  assert.equal(bytes[1], 0x02, 'code 0.02 POST');
  let pos = 4 + tkl;
  let number = 0;
  const options: Array<[number, Buffer]> = [];
  while (pos < bytes.length && bytes[pos] !== 0xff) {
    let delta = bytes[pos] >> 4;
    let length = bytes[pos] & 15;
    pos++;
    if (delta === 13) delta = bytes[pos++] + 13;
    else if (delta === 14) {
      delta = bytes.readUInt16BE(pos) + 269;
      pos += 2;
    }
    if (length === 13) length = bytes[pos++] + 13;
    else if (length === 14) {
      length = bytes.readUInt16BE(pos) + 269;
      pos += 2;
    }
    assert.ok(delta !== 15 && length !== 15, 'no reserved nibble');
    number += delta;
    options.push([number, bytes.subarray(pos, pos + length)]);
    pos += length;
  }
  assert.equal(bytes[pos], 0xff, 'payload marker');
  assert.ok(pos + 1 < bytes.length, 'a payload follows the marker');
  return { options, payload: bytes.subarray(pos + 1) };
}

describe('client: interop with node-coap as the LwM2M server', function () {
  let lwm2m: NodeCoapLwm2mServer;
  let client: Lwm2mClient;
  let updates: string[];
  let deletes: string[];
  let sends: NodeCoapIncoming[];

  beforeEach(async function () {
    lwm2m = new NodeCoapLwm2mServer();
    await lwm2m.start();
    updates = [];
    deletes = [];
    sends = [];
    lwm2m.handler = (req, res) => {
      const url = (req.url ?? '').split('?')[0];
      if (req.method === 'POST' && url === '/rd') {
        res.code = '2.01';
        res.setOption('Location-Path', [Buffer.from('rd'), Buffer.from('n0d3')]);
        res.end();
      } else if (req.method === 'POST' && url === '/rd/n0d3') {
        updates.push(req.url);
        res.code = '2.04';
        res.end();
      } else if (req.method === 'DELETE' && url === '/rd/n0d3') {
        deletes.push(url);
        res.code = '2.02';
        res.end();
      } else if (req.method === 'POST' && url === '/dp') {
        sends.push(req);
        res.code = '2.04';
        res.end();
      } else {
        res.code = '4.04';
        res.end();
      }
    };
    client = new Lwm2mClient({
      endpointName: 'interop-1',
      serverUri: `coap://127.0.0.1:${lwm2m.port}`,
      bindAddress: '127.0.0.1',
      lifetime: 120,
      objects: [3303, 5],
      coap: FAST_COAP,
    });
  });

  afterEach(async function () {
    await client.stop({ timeoutMs: 1000 });
    await lwm2m.stop();
  });

  it('sends a Register that follows RFC 7252 and LwM2M 1.1 to the letter', async function () {
    await client.start();
    const register = lwm2m.datagrams.find((bytes) => bytes[1] === 0x02)!;
    const { options, payload } = checkRegisterBytes(register);
    const numbers = options.map(([n]) => n);
    assert.deepEqual(
      numbers,
      [...numbers].sort((a, b) => a - b),
      'options in ascending order',
    );
    assert.deepEqual(
      options.filter(([n]) => n === 11).map(([, v]) => v.toString()),
      ['rd'],
      'Uri-Path rd',
    );
    const query = options.filter(([n]) => n === 15).map(([, v]) => v.toString());
    assert.deepEqual(query, ['ep=interop-1', 'lt=120', 'lwm2m=1.1', 'b=U']);
    const contentFormat = options.find(([n]) => n === 12)!;
    assert.deepEqual(contentFormat[1], Buffer.from([40]), 'Content-Format 40 (link-format), one byte');
    assert.equal(
      options.some(([n]) => n !== 11 && n !== 12 && n !== 15),
      false,
      'nothing else',
    );
    const text = payload.toString('utf8');
    assert.equal(
      text,
      '</>;rt="oma.lwm2m";ct=110,</1>;ver=1.1,</1/0>,</3>;ver=1.2,</3/0>,' +
        '</5>;ver=1.2,</5/0>,</3303>;ver=1.1,</3303/0>',
    );
    const links = parseLinkFormat(text);
    assert.equal(links[0].params.rt, 'oma.lwm2m');
    assert.ok(
      links.every((link) => /^\/(\d+(\/\d+)?)?$/.test(link.uri)),
      'every link is an object or instance',
    );
    assert.equal(client.registrationLocation, '/rd/n0d3');
    // the same request seen through coap-packet, as a check of the check
    const packet = parsePacket(register);
    assert.equal(packet.confirmable, true);
    assert.equal(packet.code, '0.02');
  });

  it('registers as 1.0 without root link, with a UQ binding in queue mode', async function () {
    await client.stop();
    client = new Lwm2mClient({
      endpointName: 'interop-0',
      serverUri: `coap://127.0.0.1:${lwm2m.port}`,
      bindAddress: '127.0.0.1',
      lwm2mVersion: '1.0',
      queueMode: true,
      objects: [3303],
      coap: FAST_COAP,
    });
    await client.start();
    const register = lwm2m.datagrams.find((bytes) => bytes[1] === 0x02)!;
    const { options, payload } = checkRegisterBytes(register);
    const query = options.filter(([n]) => n === 15).map(([, v]) => v.toString());
    assert.deepEqual(query, ['ep=interop-0', 'lt=300', 'lwm2m=1.0', 'b=UQ']);
    assert.equal(payload.toString(), '</1/0>,</3/0>,</3303>;ver=1.1,</3303/0>');
  });

  it('answers GET, PUT, POST, DELETE and Observe from node-coap', async function () {
    await client.start();
    const port = client.localAddress()!.port;

    const text = await lwm2m.ask(port, { pathname: '/3/0/0' });
    assert.equal(text.code, '2.05');
    assert.equal(uintOption(text, 'Content-Format'), 0);
    assert.equal(text.payload.toString(), 'node-red-contrib-lwm2m');

    const tlv = await lwm2m.ask(port, { pathname: '/3/0' }, (req) => req.setOption('Accept', 11542));
    assert.equal(tlv.code, '2.05');
    assert.equal(uintOption(tlv, 'Content-Format'), 11542);
    const device = decodeNode(tlv.payload, 11542, LwM2mPath.parse('/3/0'), model);
    assert.equal(device.kind, 'instance');

    const senml = await lwm2m.ask(port, { pathname: '/3303/0/5700' }, (req) => req.setOption('Accept', 110));
    assert.equal(uintOption(senml, 'Content-Format'), 110);
    assert.equal(parseSenmlJson(senml.payload)[0].name, '/3303/0/5700');

    const discover = await lwm2m.ask(port, { pathname: '/3' }, (req) => req.setOption('Accept', 40));
    assert.equal(uintOption(discover, 'Content-Format'), 40);
    assert.match(discover.payload.toString(), /^<\/3>;ver=1\.2,<\/3\/0>,<\/3\/0\/0>,/);

    const notAcceptable = await lwm2m.ask(port, { pathname: '/3/0' }, (req) => req.setOption('Accept', 50));
    assert.equal(notAcceptable.code, '4.06');

    const put = await lwm2m.ask(
      port,
      { pathname: '/3303/0/5750', method: 'PUT' },
      (req) => req.setOption('Content-Format', 'text/plain'),
      'porch',
    );
    assert.equal(put.code, '2.04');
    assert.equal(client.get('/3303/0/5750'), 'porch');

    const execute = await lwm2m.ask(port, { pathname: '/3303/0/5605', method: 'POST' });
    assert.equal(execute.code, '2.04');

    const notAllowed = await lwm2m.ask(port, { pathname: '/3303/0/5700', method: 'PUT' }, undefined, '1');
    assert.equal(notAllowed.code, '4.05');

    // Create with a TLV instance 7 (0x08: instance, 8-bit length) holding 5700 = 1.5 (float32 3fc00000)
    const create = await lwm2m.ask(
      port,
      { pathname: '/3303', method: 'POST' },
      (req) => req.setOption('Content-Format', 11542 as never),
      Buffer.from('080707e416443fc00000', 'hex'),
    );
    assert.equal(create.code, '2.01');
    const location = (create._packet.options ?? [])
      .filter((option) => option.name === 'Location-Path')
      .map((option) => Buffer.from(option.value as Buffer).toString());
    assert.deepEqual(location, ['3303', '7']);
    assert.equal(client.get('/3303/7/5700'), 1.5);
    await waitFor(() => updates.length === 1, 2000, 'an Update announcing /3303/7');

    const remove = await lwm2m.ask(port, { pathname: '/3303/7', method: 'DELETE' });
    assert.equal(remove.code, '2.02');
    const missing = await lwm2m.ask(port, { pathname: '/3303/7/5700' });
    assert.equal(missing.code, '4.04');

    const observe = await lwm2m.ask(port, { pathname: '/3303/0/5700', observe: true });
    assert.equal(observe.code, '2.05');
    const values: string[] = [];
    observe.on('data', (chunk: Buffer) => values.push(chunk.toString()));
    const before = lwm2m.datagrams.length;
    client.set('/3303/0/5700', 17.25);
    await waitFor(() => values.includes('17.25'), 2000, 'a notification');
    // the notification went out non-confirmable, with an Observe option and the observation's token
    const notification = lwm2m.datagrams
      .slice(before)
      .map((bytes) => parsePacket(bytes))
      .find((p) => p.code === '2.05')!;
    assert.equal(notification.confirmable, false);
    assert.equal(notification.reset, false);
    assert.ok(notification.options.some((option) => option.name === 'Observe'));
    (observe as unknown as { close(): void }).close();
  });

  it('delivers Send (POST /dp) in SenML CBOR and SenML JSON', async function () {
    await client.start();
    client.set('/3303/0/5700', 19.5);
    const cbor = await client.send(['/3303/0/5700', '/3/0/9']);
    assert.equal(cbor.code, '2.04');
    await waitFor(() => sends.length === 1);
    assert.equal(uintOption(sends[0], 'Content-Format'), 112);
    const records = parseSenmlCbor(sends[0].payload);
    assert.deepEqual(
      records.map((r) => [r.name, r.value]),
      [
        ['/3303/0/5700', 19.5],
        ['/3/0/9', 100],
      ],
    );
    const json = await client.send(['/3303/0'], { format: 110 });
    assert.equal(json.code, '2.04');
    await waitFor(() => sends.length === 2);
    assert.equal(uintOption(sends[1], 'Content-Format'), 110);
    assert.ok(parseSenmlJson(sends[1].payload).some((r) => r.name === '/3303/0/5700' && r.value === 19.5));
  });

  it('refuses Send when muted or in 1.0', async function () {
    await client.start();
    client.set('/1/0/23', true);
    await assert.rejects(client.send(['/3/0/9']), /muted/);
    const old = new Lwm2mClient({ endpointName: 'x', lwm2mVersion: '1.0' });
    await assert.rejects(old.send(['/3/0/9']), /1\.1/);
  });

  it('sends periodic Updates and de-registers with DELETE', async function () {
    await client.stop();
    client = new Lwm2mClient({
      endpointName: 'interop-2',
      serverUri: `coap://127.0.0.1:${lwm2m.port}`,
      bindAddress: '127.0.0.1',
      lifetime: 2,
      coap: FAST_COAP,
    });
    await client.start();
    await waitFor(() => updates.length >= 1, 3000, 'an Update');
    assert.equal(updates[0], '/rd/n0d3', 'an Update with nothing changed carries no query');
    await client.stop();
    assert.deepEqual(deletes, ['/rd/n0d3']);
    await sleep(10);
  });
});
