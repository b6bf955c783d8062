/**
 * Each client-initiated bootstrap starts a fresh retry sequence. Before issue 17's split
 * every caller of beginBootstrap() set bootstrapAttempts = 0; BootstrapHandler.begin() must do the same, or a second
 * bootstrap (start() again, bootstrap(), registration failing for good) inherits the attempts of the earlier one:
 * its 'bootstrapping' events count on, its back-off starts longer, and bootstrapRetry.maxAttempts cuts it short.
 */
import { strict as assert } from 'node:assert';
import { CoapEndpoint } from '../../lib/coap/endpoint';
import type { IncomingRequest, OutgoingResponse } from '../../lib/coap/types';
import { Bench } from './helpers';

describe('client: bootstrap attempts', function () {
  let bench: Bench;
  let bs: CoapEndpoint;
  let bsRequests = 0;

  beforeEach(async function () {
    bench = new Bench();
    bs = await bench.rawEndpoint();
    bsRequests = 0;
    // Refuses every Bootstrap-Request.
    bs.setRequestHandler((request: IncomingRequest): OutgoingResponse => {
      if (request.method === 'POST' && request.pathSegments.join('/') === 'bs') bsRequests++;
      return { code: '4.00' };
    });
  });

  afterEach(async function () {
    await bench.close();
  });

  it('a second start() after a failed bootstrap gets the whole bootstrapRetry sequence again', async function () {
    const client = bench.client({
      endpointName: 'bs-again',
      serverUri: undefined,
      bootstrapUri: `coap://127.0.0.1:${bs.localAddress()!.port}`,
      bootstrapRetry: { initialDelayMs: 20, maxDelayMs: 40, maxAttempts: 2 },
    });
    const attempts: number[] = [];
    client.on('bootstrapping', (info: { attempt: number }) => attempts.push(info.attempt));
    client.on('bootstrapFailed', () => undefined);
    await assert.rejects(client.start(), /bootstrap failed/);
    assert.equal(bsRequests, 2);
    await assert.rejects(client.start(), /bootstrap failed/);
    assert.equal(bsRequests, 4, 'the second bootstrap has its own 2 attempts');
    assert.deepEqual(attempts, [1, 2, 1, 2]);
  });
});
