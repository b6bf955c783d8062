/**
 * Registration floods stay bounded: a cap on the registrations held and a budget of new endpoint names per source
 * address refuse new endpoints with 5.03, Max-Age and a diagnostic, and say so in a throttled report; endpoints the
 * server holds register and update again whatever the limits. The senders are our CoAP endpoint on real UDP sockets,
 * bound to two loopback addresses (127.0.0.1 and 127.0.0.2) to be two sources.
 */
import { strict as assert } from 'node:assert';
import { CoapEndpoint } from '../../lib/coap/endpoint';
import type { IncomingResponse } from '../../lib/coap/types';
import { Lwm2mServer } from '../../lib/server/lwm2m-server';
import type { Lwm2mServerOptions } from '../../lib/server/lwm2m-server';
import { LimitWarnings, watchRequestBudget } from '../../lib/server/limit-warnings';
import type { LimitReport } from '../../lib/server/limit-warnings';
import { UdpTransport } from '../../lib/transport/udp';

const LINK_FORMAT = 40;

/** A CoAP sender bound to one local address: it registers, updates, and reads the answers. */
class Sender {
  private readonly endpoint: CoapEndpoint;

  constructor(
    readonly address: string,
    private readonly serverPort: number,
  ) {
    this.endpoint = new CoapEndpoint(new UdpTransport({ address, port: 0 }), { ackTimeoutMs: 500, maxRetransmit: 1 });
  }

  start(): Promise<unknown> {
    return this.endpoint.start();
  }

  register(endpoint: string): Promise<IncomingResponse> {
    return this.endpoint.request(
      { address: '127.0.0.1', port: this.serverPort },
      {
        method: 'POST',
        pathSegments: ['rd'],
        query: [`ep=${endpoint}`, 'lt=300', 'lwm2m=1.1'],
        contentFormat: LINK_FORMAT,
        payload: Buffer.from('</1/0>,</3/0>'),
      },
    );
  }

  update(location: string): Promise<IncomingResponse> {
    return this.endpoint.request(
      { address: '127.0.0.1', port: this.serverPort },
      { method: 'POST', pathSegments: location.split('/').filter(Boolean) },
    );
  }

  close(): Promise<void> {
    return this.endpoint.close();
  }
}

function maxAgeOf(response: IncomingResponse): number | undefined {
  const option = response.options.find((item) => item.name === 'Max-Age');
  return option === undefined
    ? undefined
    : option.value.length === 0
      ? 0
      : option.value.readUIntBE(0, option.value.length);
}

function locationOf(response: IncomingResponse): string {
  return response.options
    .filter((item) => item.name === 'Location-Path')
    .map((item) => '/' + item.value.toString())
    .join('');
}

describe('registration limits: a cap and a per-address budget of new registrations', function () {
  let server: Lwm2mServer;
  const senders: Sender[] = [];
  const reports: LimitReport[] = [];

  async function start(options: Partial<Lwm2mServerOptions>): Promise<number> {
    server = new Lwm2mServer({ address: '127.0.0.1', port: 0, ...options });
    server.on('limited', (report) => reports.push(report));
    return (await server.start()).port;
  }

  async function sender(address: string, port: number): Promise<Sender> {
    const created = new Sender(address, port);
    await created.start();
    senders.push(created);
    return created;
  }

  afterEach(async function () {
    for (const created of senders.splice(0)) await created.close();
    await server?.stop();
    reports.length = 0;
  });

  it('at the cap a new endpoint gets 5.03 with Max-Age and the reason; one the server holds registers again', async function () {
    const port = await start({ maxRegistrations: 3, newRegistrationsPerAddressPerSecond: 0 });
    const one = await sender('127.0.0.1', port);
    const first = await one.register('dev-1');
    assert.equal(first.code, '2.01');
    assert.equal((await one.register('dev-2')).code, '2.01');
    assert.equal((await one.register('dev-3')).code, '2.01');

    const refused = await one.register('dev-4');
    assert.equal(refused.code, '5.03');
    assert.equal(maxAgeOf(refused), 60);
    assert.match(refused.payload.toString(), /holds 3 registrations, its limit/);
    assert.equal(await server.getRegistration('dev-4'), undefined);
    assert.equal((await server.listRegistrations()).length, 3);

    // Held ones are never refused: an Update, and a Register again (a reboot), even at the cap.
    assert.equal((await one.update(locationOf(first))).code, '2.04');
    assert.equal((await one.register('dev-1')).code, '2.01');
    assert.equal((await server.listRegistrations()).length, 3);
    // A second refusal: counted for the summary, not reported again.
    assert.equal((await one.register('dev-5')).code, '5.03');

    assert.equal(reports.length, 1, 'one report at once; the others wait for the summary');
    assert.equal(reports[0].kind, 'registration-cap');
    assert.match(reports[0].message, /dev-4.*127\.0\.0\.1/);
  });

  it('an address past its budget is refused while another address still registers', async function () {
    // A burst of 3, then one every 1000 s: nothing refills during the test.
    const port = await start({ newRegistrationsBurstPerAddress: 3, newRegistrationsPerAddressPerSecond: 0.001 });
    const busy = await sender('127.0.0.1', port);
    const other = await sender('127.0.0.2', port);
    const registered: IncomingResponse[] = [];
    for (const endpoint of ['nat-1', 'nat-2', 'nat-3']) registered.push(await busy.register(endpoint));
    assert.deepEqual(
      registered.map((response) => response.code),
      ['2.01', '2.01', '2.01'],
    );

    const refused = await busy.register('nat-4');
    assert.equal(refused.code, '5.03');
    assert.ok((maxAgeOf(refused) ?? 0) >= 1, 'Max-Age says when to try again');
    assert.match(refused.payload.toString(), /too many new registrations from 127\.0\.0\.1 \(at most 3 at once/);
    assert.equal(await server.getRegistration('nat-4'), undefined);

    // Another source address has its own budget.
    assert.equal((await other.register('far-1')).code, '2.01');
    // The busy address's known endpoints are not charged: Updates and Registers again go through.
    assert.equal((await busy.update(locationOf(registered[0]))).code, '2.04');
    assert.equal((await busy.register('nat-2')).code, '2.01');
    assert.equal((await busy.register('nat-5')).code, '5.03');

    assert.equal(reports[0]?.kind, 'registration-budget');
    assert.equal(reports.length, 1);
  });

  it('both limits off (0): nothing is refused', async function () {
    const port = await start({ maxRegistrations: 0, newRegistrationsPerAddressPerSecond: 0 });
    const one = await sender('127.0.0.1', port);
    for (let i = 0; i < 20; i++) assert.equal((await one.register(`free-${i}`)).code, '2.01');
    assert.equal(reports.length, 0);
  });
});

describe('limit reports are throttled', function () {
  it('the first at once, then one summary a period with the count and the latest', async function () {
    const seen: LimitReport[] = [];
    let summarised!: () => void;
    const summary = new Promise<void>((resolve) => (summarised = resolve));
    const warnings = new LimitWarnings((report) => {
      seen.push(report);
      if (report.count > 1) summarised();
    }, 50);
    try {
      for (let i = 1; i <= 500; i++) warnings.note('registration-budget', `refused ep-${i}`);
      warnings.note('registration-cap', 'full');
      assert.deepEqual(
        seen.map((report) => [report.kind, report.count]),
        [
          ['registration-budget', 1],
          ['registration-cap', 1],
        ],
      );
      await summary;
      assert.equal(seen[2].kind, 'registration-budget');
      assert.equal(seen[2].count, 499);
      assert.match(seen[2].message, /^499 times in the last .*; the latest: refused ep-500$/);
    } finally {
      warnings.stop();
    }
  });

  it('stop() reports what was counted and leaves no timer', async function () {
    const seen: LimitReport[] = [];
    const warnings = new LimitWarnings((report) => seen.push(report), 60_000);
    warnings.note('notification-flood', 'a');
    warnings.note('notification-flood', 'b');
    warnings.stop();
    assert.deepEqual(
      seen.map((report) => report.count),
      [1, 1],
    );
    assert.match(seen[1].message, /the latest: b/);
  });
});

describe('the per-address request budget', function () {
  it('requests the endpoint dropped for it are reported with their count', async function () {
    const seen: LimitReport[] = [];
    let reported!: () => void;
    const first = new Promise<void>((resolve) => (reported = resolve));
    const warnings = new LimitWarnings((report) => {
      seen.push(report);
      reported();
    });
    let dropped = 7; // dropped before the watch started: not reported
    const timer = watchRequestBudget(() => dropped, 5000, warnings, 10);
    try {
      dropped += 42;
      await first;
      assert.equal(seen[0].kind, 'request-budget');
      assert.match(seen[0].message, /^42 requests dropped: one address sent more than 5000 a second/);
    } finally {
      clearInterval(timer);
      warnings.stop();
    }
  });

  it("is the server's default unless the CoAP options set it, and 0 turns it off", async function () {
    const servers = [
      new Lwm2mServer({ address: '127.0.0.1', port: 0 }),
      new Lwm2mServer({ address: '127.0.0.1', port: 0, coap: { maxRequestsPerSecondPerAddress: 0 } }),
    ];
    try {
      const budgets: number[] = [];
      for (const server of servers) {
        await server.start();
        const { endpoint } = server as unknown as { endpoint: { options: { maxRequestsPerSecondPerAddress: number } } };
        budgets.push(endpoint.options.maxRequestsPerSecondPerAddress);
      }
      assert.deepEqual(budgets, [5000, 0]);
    } finally {
      for (const server of servers) await server.stop();
    }
  });
});
