import { strict as assert } from 'node:assert';
import type { BootstrapFailedEvent, BootstrapFinishedEvent, BootstrapStartedEvent } from '../../lib/bootstrap';
import { BootstrapServer } from '../../lib/bootstrap';
import { DtlsClientTransport } from '../../lib/client/dtls-transport';
import { CoapEndpoint } from '../../lib/coap/endpoint';
import type { IncomingRequest } from '../../lib/coap/types';
import { ContentFormat } from '../../lib/content/types';
import type { PeerAddress } from '../../lib/transport/types';
import { FAST_COAP, MODEL, decodeWrite, nextEvent } from './helpers';

const KEY = Buffer.from('bootstrap-psk-key-1');

/** A device over DTLS PSK: our CoAP endpoint on node-dtls-client (lib/client's transport), answering BS requests. */
class DtlsDevice {
  readonly requests: Array<{ method: string; url: string; contentFormat?: number; accept?: number; payload: Buffer }> =
    [];
  readonly coap: CoapEndpoint;

  constructor(
    readonly server: PeerAddress,
    identity: string,
    key: Buffer,
  ) {
    const transport = new DtlsClientTransport(server, { identity, key }, { handshakeTimeoutMs: 5000 });
    this.coap = new CoapEndpoint(transport, FAST_COAP);
    this.coap.setRequestHandler((request: IncomingRequest) => {
      this.requests.push({
        method: request.method,
        url: '/' + request.pathSegments.join('/'),
        contentFormat: request.contentFormat,
        accept: request.accept,
        payload: request.payload,
      });
      if (request.method === 'DELETE') return { code: '2.02' };
      return { code: '2.04' };
    });
  }

  async bootstrapRequest(endpoint: string): Promise<string> {
    const response = await this.coap.request(this.server, {
      method: 'POST',
      pathSegments: ['bs'],
      query: [`ep=${endpoint}`],
    });
    return response.code;
  }
}

describe('BootstrapServer over DTLS (PSK, node-dtls-client as the device)', function () {
  let server: BootstrapServer;
  let device: DtlsDevice | undefined;

  beforeEach(async function () {
    server = new BootstrapServer({ address: '127.0.0.1', port: 0, dtls: { port: 0 }, coap: FAST_COAP, model: MODEL });
    await server.start();
    await server.securityStore.add({ endpoint: 'secure-1', mode: 'psk', identity: 'secure-1-id', key: KEY });
    await server.configStore.set('*', {
      servers: [
        {
          shortServerId: 1,
          uri: 'coaps://dm.example.com:5684',
          securityMode: 'psk',
          pskIdentity: 'secure-1-dm',
          pskKey: 'a0a1a2a3a4a5a6a7',
        },
      ],
    });
  });

  afterEach(async function () {
    await device?.coap.close();
    device = undefined;
    await server.stop();
  });

  it('bootstraps a device that comes over DTLS with its own PSK identity', async function () {
    assert.notEqual(server.secureAddress?.port, server.address?.port);
    device = new DtlsDevice({ address: '127.0.0.1', port: server.secureAddress!.port }, 'secure-1-id', KEY);
    await device.coap.start();
    const started = nextEvent<BootstrapStartedEvent>(server, 'bootstrapStarted');
    const done = nextEvent<BootstrapFinishedEvent>(server, 'bootstrapFinished');
    assert.equal(await device.bootstrapRequest('secure-1'), '2.04');
    assert.deepEqual((await started).peer.security, { mode: 'psk', identity: 'secure-1-id' });
    const result = await done;
    assert.equal(result.peer.secure, true);
    assert.deepEqual(
      device.requests.map((request) => `${request.method} ${request.url}`),
      ['DELETE /0', 'DELETE /1', 'PUT /0/2', 'PUT /1/0', 'POST /bs'],
    );
    const security = device.requests[2];
    assert.equal(security.contentFormat, ContentFormat.TLV);
    assert.deepEqual(decodeWrite(security), {
      0: 'coaps://dm.example.com:5684',
      1: false,
      2: 0,
      3: Buffer.from('secure-1-dm').toString('hex'),
      4: '',
      5: 'a0a1a2a3a4a5a6a7',
      10: 1,
    });
  });

  it('refuses (4.03) a DTLS identity that asks as another endpoint', async function () {
    await server.securityStore.add({ endpoint: 'other', mode: 'psk', identity: 'other-id', key: KEY });
    device = new DtlsDevice({ address: '127.0.0.1', port: server.secureAddress!.port }, 'other-id', KEY);
    await device.coap.start();
    const failed = nextEvent<BootstrapFailedEvent>(server, 'bootstrapFailed');
    assert.equal(await device.bootstrapRequest('secure-1'), '4.03');
    const event = await failed;
    assert.equal(event.step, 'request');
    assert.match(event.reason, /PSK identity "other-id" belongs to endpoint "other", not "secure-1"/);
    assert.equal(device.requests.length, 0);
  });
});
