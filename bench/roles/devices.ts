/**
 * Load side: devices. `fleet*` runs our simulator (startFleet: full Lwm2mClient devices, one socket
 * each); `lean*` runs lean devices (bench/lean-devices.ts: one socket each, a header copy per answer).
 */
import * as dgram from 'node:dgram';
import { Lwm2mClient } from '../../lib/client';
import { startFleet, type Fleet } from '../../lib/client/fleet';
import { parseAddressList } from '../../lib/client/fleet';
import type { ObjectChoice } from '../../lib/client/client';
import type { DatagramTransport, Peer, PeerAddress } from '../../lib/transport/types';
import { UdpTransport } from '../../lib/transport/udp';
import { LeanProtocol, updateRequest, type LeanDevice } from '../lean-devices';
import { closedLoop, CpuMeter, Latencies, sleep } from '../stats';
import type { Handler } from '../rpc';

const cpu = new CpuMeter();

/** Notes when a device's first datagram (its Register) leaves. */
class TimedTransport implements DatagramTransport {
  firstSendAt: number | undefined;
  constructor(private readonly inner: DatagramTransport) {}
  start(): Promise<PeerAddress> {
    return this.inner.start();
  }
  send(data: Buffer, peer: PeerAddress): void {
    this.firstSendAt ??= performance.now();
    this.inner.send(data, peer);
  }
  onDatagram(listener: (data: Buffer, peer: Peer) => void): void {
    this.inner.onDatagram(listener);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  localAddress(): PeerAddress | undefined {
    return this.inner.localAddress();
  }
}

let fleet: Fleet | undefined;
/** The section 6 firmware device. */
let firmwareClient: Lwm2mClient | undefined;

// ---- lean devices over UDP
let lean: LeanProtocol | undefined;
const leanSockets: dgram.Socket[] = [];
let leanServer: PeerAddress | undefined;

function bindSocket(address: string): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', reject);
    s.bind(0, address, () => {
      s.off('error', reject);
      resolve(s);
    });
  });
}

export const deviceHandlers: Record<string, Handler> = {
  cpuMark: () => cpu.mark(),
  cpuRead: () => cpu.elapsedUs(),
  memory: () => process.memoryUsage(),

  /**
   * Starts `count` fleet devices against the server and waits until every one registered.
   * Registration latency: from a device's first datagram (its Register) to its `registered` event.
   */
  async fleetStart(args: {
    port: number;
    count: number;
    prefix: string;
    lwm2mVersion: '1.0' | '1.1';
    objects: Array<number | ObjectChoice>;
    bind: string;
    concurrency: number;
    timeoutMs: number;
    /** DTLS with this PSK (hex; identity = endpoint name): `coaps://`, node-dtls-client sockets, no bind address. */
    pskHex?: string;
  }) {
    const timed = new Map<string, TimedTransport>();
    const latencies = new Latencies();
    let first = Infinity;
    let last = 0;
    cpu.mark();
    const startedAt = performance.now();
    const psk = args.pskHex === undefined ? undefined : { key: Buffer.from(args.pskHex, 'hex') };
    fleet = await startFleet({
      serverUri: `${psk ? 'coaps' : 'coap'}://127.0.0.1:${args.port}`,
      psk,
      count: args.count,
      prefix: args.prefix,
      lwm2mVersion: args.lwm2mVersion,
      objects: args.objects,
      lifetime: 3600,
      // node-dtls-client binds its own socket (any address): a DTLS fleet has no bind addresses
      bindAddresses: psk ? undefined : args.bind,
      registrationRate: 1_000_000,
      concurrency: args.concurrency,
      client: (_index, endpointName) =>
        psk
          ? {}
          : {
              transport: (local) => {
                const t = new TimedTransport(new UdpTransport({ address: local.address, port: local.port }));
                timed.set(endpointName, t);
                return t;
              },
            },
    });
    // a DTLS fleet's latency is not timed (node-dtls-client's socket is its own): its rate runs from the start
    if (psk) first = startedAt;
    fleet.on('registered', (client) => {
      const now = performance.now();
      const t = timed.get(client.endpointName);
      if (t?.firstSendAt !== undefined) {
        latencies.add(now - t.firstSendAt);
        first = Math.min(first, t.firstSendAt);
      }
      last = Math.max(last, now);
    });
    let error: string | undefined;
    try {
      await fleet.whenRegistered({ timeoutMs: args.timeoutMs });
    } catch (err) {
      error = (err as Error).message;
    }
    const stats = fleet.stats();
    return {
      registered: stats.everRegistered,
      failures: stats.registrationFailures,
      seconds: (last - first) / 1000,
      rate: stats.everRegistered / ((last - first) / 1000),
      ...latencies.summary(),
      loadCpuUs: cpu.elapsedUs(),
      error,
    };
  },

  /** Registration Updates from fleet devices, `window` at a time, for `seconds`. */
  async fleetUpdates(args: { window: number; seconds: number }) {
    const f = fleet!;
    const before = f.stats().updates;
    const result = await closedLoop({
      window: args.window,
      seconds: args.seconds,
      op: (i) => f.devices[i % f.devices.length].update(),
    });
    return { ...result, updatesCounted: f.stats().updates - before };
  },

  async fleetStop() {
    await fleet?.stop({ deregister: false, concurrency: 1000 });
    fleet = undefined;
  },

  /** Binds `count` lean devices (spread over `bind`) and registers them, `window` in flight at once. */
  async leanStart(args: {
    port: number;
    count: number;
    prefix: string;
    bind: string;
    window: number;
    timeoutMs: number;
  }) {
    const addresses = parseAddressList(args.bind);
    leanServer = { address: '127.0.0.1', port: args.port };
    const protocol = new LeanProtocol(args.prefix, args.count, (device, data) =>
      leanSockets[device.index].send(data, leanServer!.port, leanServer!.address),
    );
    lean = protocol;
    const perAddress = Math.ceil(args.count / addresses.length);
    for (let i = 0; i < args.count; i++) {
      const s = await bindSocket(addresses[Math.floor(i / perAddress)]);
      const device = protocol.devices[i];
      s.on('message', (data) => protocol.receive(device, data));
      leanSockets.push(s);
    }
    const latencies = new Latencies();
    const sentAt = new Map<number, number>();
    let lastAt = 0;
    protocol.whenRegistered((d) => {
      lastAt = performance.now();
      const t = sentAt.get(d.index);
      if (t !== undefined) latencies.add(lastAt - t);
    });
    const t0 = performance.now();
    const end = t0 + args.timeoutMs;
    // `window` registrations in flight; one that got no answer within 2 s is sent again
    let next = 0;
    while (protocol.registered < args.count && performance.now() < end) {
      const inFlight = next - protocol.registered;
      for (let k = inFlight; k < args.window && next < args.count; k++) {
        const d = protocol.devices[next++];
        sentAt.set(d.index, performance.now());
        protocol.register(d);
      }
      const now = performance.now();
      if (next >= args.count) {
        for (const d of protocol.devices) {
          if (d.location === undefined && now - (sentAt.get(d.index) ?? now) > 2000) {
            sentAt.set(d.index, now);
            protocol.register(d);
          }
        }
      }
      await sleep(next >= args.count ? 5 : 1);
    }
    return {
      registered: protocol.registered,
      seconds: ((protocol.registered === args.count ? lastAt : performance.now()) - t0) / 1000,
      ...latencies.summary(),
    };
  },

  /**
   * Registration Updates from lean devices, `window` in flight, round-robin over every registered
   * device (so no device sends more than CoAP allows one to: 65536 message ids per EXCHANGE_LIFETIME).
   */
  async leanUpdates(args: { window: number; seconds: number }) {
    const p = lean!;
    const devices = p.devices.filter((d) => d.location !== undefined);
    if (devices.length < args.window * 2) throw new Error(`need at least ${args.window * 2} registered lean devices`);
    const token = Buffer.from([9, 9, 9, 9]);
    return closedLoop({
      window: args.window,
      seconds: args.seconds,
      op: async (i) => {
        const d: LeanDevice = devices[i % devices.length];
        const ack = await p.exchange(d, (mid) => updateRequest(d.location!, mid, token));
        if (ack === undefined) throw new Error('Update: no answer');
        if (ack.code !== 0x44)
          throw new Error(`Update answered ${ack.code >> 5}.${String(ack.code & 31).padStart(2, '0')}`);
      },
    });
  },

  /**
   * Every observed lean device notifies (NON), round-robin, as fast as the sockets take it, for
   * `seconds`; returns how many went out.
   */
  async leanNotify(args: { seconds: number; burst?: number }) {
    const p = lean!;
    const observed = p.devices.filter((d) => d.observeToken !== undefined);
    if (observed.length === 0) return { sent: 0, observed: 0 };
    const before = p.notificationsSent;
    const end = performance.now() + args.seconds * 1000;
    let i = 0;
    while (performance.now() < end) {
      for (let k = 0; k < (args.burst ?? 128); k++) p.notify(observed[i++ % observed.length]);
      await new Promise((r) => setImmediate(r));
    }
    return { sent: p.notificationsSent - before, observed: observed.length };
  },

  leanObserved: () => lean?.devices.filter((d) => d.observeToken !== undefined).length ?? 0,

  async leanStop() {
    for (const s of leanSockets.splice(0)) s.close();
    lean = undefined;
  },
};

Object.assign(deviceHandlers, {
  /** One simulated device with the Firmware Update object (quick to install and to reboot), registered. */
  async firmwareStart(args: { port: number; endpoint: string }) {
    firmwareClient = new Lwm2mClient({
      endpointName: args.endpoint,
      serverUri: `coap://127.0.0.1:${args.port}`,
      bindAddress: '127.0.0.1',
      objects: [5],
      lifetime: 3600,
      rebootDelayMs: 20,
      registerRetry: { initialDelayMs: 50, maxDelayMs: 500 },
      firmware: { updateDelayMs: 10, downloadTimeoutMs: 120_000 },
    });
    await firmwareClient.start();
    cpu.mark();
  },
  async firmwareStop() {
    await firmwareClient?.stop({ timeoutMs: 1000 }).catch(() => undefined);
    firmwareClient = undefined;
  },
} satisfies Record<string, Handler>);

export async function deviceCleanup(): Promise<void> {
  await deviceHandlers.firmwareStop({});
  await deviceHandlers.fleetStop({});
  await deviceHandlers.leanStop({});
}
