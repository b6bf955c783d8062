/**
 * Memory per registered device, in a process of its own started with --expose-gc.
 *
 * 100k devices cannot each have a socket here (20,000 open files at most), so the server runs on an
 * in-memory DatagramTransport (the seam a DTLS transport will plug into) and lean devices answer
 * Register and Observe in the same process, stateless: their objects are allocated before the
 * baseline is taken and nothing is added to them afterwards, so what grows is the server's (its
 * registration and observation stores, CoAP endpoint state, dedup cache, expiry index).
 */
import { writeHeapSnapshot } from 'node:v8';
import { Lwm2mServer, NO_FLOOD_LIMITS } from '../../lib/server/lwm2m-server';
import { peerKey } from '../../lib/transport/peer';
import type { DatagramTransport, Peer, PeerAddress } from '../../lib/transport/types';
import { LEAN_PATH, LeanProtocol, type LeanDevice } from '../lean-devices';
import { Latencies, sleep } from '../stats';
import type { Handler } from '../rpc';

/**
 * Device i (0-based) lives at 10.x.y.z:5683 with x.y.z = i + 1 (so 16 million fit). The text is
 * decoded from bytes, so it is one flat string as the address dgram hands over is (a template literal
 * would give a rope of concatenations, which costs more memory than what a socket gives the server).
 */
function addressOf(index: number): string {
  const n = index + 1;
  return Buffer.from(`10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`, 'latin1').toString('latin1');
}

function indexOf(address: string): number {
  const parts = address.split('.');
  return ((Number(parts[1]) << 16) | (Number(parts[2]) << 8) | Number(parts[3])) - 1;
}

/** The server's transport: datagrams to 10.x.y.z go to lean device x.y.z; their answers come back next turn. */
class DevicesTransport implements DatagramTransport {
  private listener: ((data: Buffer, peer: Peer) => void) | undefined;
  private queue: Array<{ data: Buffer; device: number }> = [];
  private scheduled = false;
  devices: LeanProtocol | undefined;

  start(): Promise<PeerAddress> {
    return Promise.resolve({ address: '10.0.0.0', port: 5683 });
  }

  send(data: Buffer, peer: PeerAddress): void {
    const index = indexOf(peer.address);
    const device = this.devices?.devices[index];
    if (device) this.devices!.receive(device, data);
  }

  /** A device sends to the server. */
  fromDevice(device: LeanDevice, data: Buffer): void {
    this.queue.push({ data, device: device.index });
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const q = this.queue;
    this.queue = [];
    for (const { data, device } of q) {
      const address = addressOf(device);
      // as UdpTransport hands a datagram over
      this.listener?.(data, { address, port: 5683, key: peerKey(address, 5683) });
    }
  };

  onDatagram(listener: (data: Buffer, peer: Peer) => void): void {
    this.listener = listener;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  localAddress(): PeerAddress | undefined {
    return { address: '10.0.0.0', port: 5683 };
  }
}

async function settledMemory(): Promise<NodeJS.MemoryUsage> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc');
  for (let i = 0; i < 4; i++) {
    gc();
    await sleep(50);
  }
  return process.memoryUsage();
}

export const memoryHandlers: Record<string, Handler> = {
  /**
   * Registers `count` devices, observes /3303/0/5700 on each, and returns the growth of RSS and heap
   * after GC. `steadyAfterMs`: the server runs with that CoAP EXCHANGE_LIFETIME and the figure is
   * taken once it has passed (the dedup cache of the registration storm expired), as it would be
   * 247 s after the storm with the default.
   */
  async measure(args: {
    count: number;
    window: number;
    steadyAfterMs?: number;
    timeoutMs: number;
    heapSnapshot?: string;
    /** A heap snapshot of the baseline too (lean devices allocated, nothing registered), to diff against. */
    heapSnapshotBefore?: string;
    /** Then reads of LEAN_PATH for this long, `readWindow` in flight, at random devices: latency p50/p99. */
    readSeconds?: number;
    readWindow?: number;
  }) {
    const transport = new DevicesTransport();
    const coap: Record<string, number> = { maxConcurrentTotal: 100_000 };
    if (args.steadyAfterMs !== undefined) coap.exchangeLifetimeMs = args.steadyAfterMs;
    // Memory per device is measured, with every device admitted (no cap at the bench's 100k devices).
    const server = new Lwm2mServer({ transport, coap, ...NO_FLOOD_LIMITS });
    server.on('error', () => undefined);
    await server.start();
    const devices = new LeanProtocol('mem-', args.count, (device, data) => transport.fromDevice(device, data), true);
    transport.devices = devices;
    const before = await settledMemory();
    if (args.heapSnapshotBefore) {
      writeHeapSnapshot(args.heapSnapshotBefore);
      await settledMemory();
    }
    const t0 = performance.now();
    let observed = 0;
    let failed = 0;
    let firstError: string | undefined;
    let next = 0;
    let inFlight = 0;
    const pump = () => {
      while (inFlight < args.window && next < args.count) {
        inFlight++;
        devices.register(devices.devices[next++]);
      }
    };
    devices.whenRegistered((device) => {
      server
        .observe(device.endpoint, LEAN_PATH, { timeoutMs: 30_000 })
        .then(
          () => observed++,
          (err: Error) => {
            failed++;
            firstError ??= err.message;
          },
        )
        .finally(() => {
          inFlight--;
          pump();
        });
    });
    pump();
    const end = performance.now() + args.timeoutMs;
    while (observed + failed < args.count && performance.now() < end) await sleep(20);
    const seconds = (performance.now() - t0) / 1000;
    if (args.steadyAfterMs !== undefined) await sleep(args.steadyAfterMs + 1500);
    const after = await settledMemory();
    if (args.heapSnapshot) writeHeapSnapshot(args.heapSnapshot);
    const reads = args.readSeconds ? await readLatencies(server, devices, args.readSeconds, args.readWindow ?? 64) : {};
    const registrations = await server.registrations.size();
    const observations = (await server.listObservations()).length;
    const stats = (server as unknown as { endpoint?: { stats(): unknown } }).endpoint?.stats();
    const per = (k: keyof NodeJS.MemoryUsage) => (after[k] - before[k]) / args.count;
    const result = {
      count: args.count,
      registrations,
      observations,
      failed,
      firstError,
      seconds,
      rssPerDevice: per('rss'),
      heapPerDevice: per('heapUsed'),
      externalPerDevice: per('external'),
      rssBefore: before.rss,
      rssAfter: after.rss,
      heapBefore: before.heapUsed,
      heapAfter: after.heapUsed,
      endpointStats: stats,
      ...reads,
    };
    await server.stop();
    return result;
  },
};

/** Reads at random registered devices, `window` in flight, for `seconds`: the latency a large server gives. */
async function readLatencies(
  server: Lwm2mServer,
  devices: LeanProtocol,
  seconds: number,
  window: number,
): Promise<{ reads: number; readErrors: number; readP50?: number; readP99?: number; readsPerSecond: number }> {
  const latencies = new Latencies();
  const count = devices.devices.length;
  const end = performance.now() + seconds * 1000;
  let errors = 0;
  const loop = async () => {
    while (performance.now() < end) {
      const device = devices.devices[Math.floor(Math.random() * count)];
      const t0 = performance.now();
      try {
        await server.read(device.endpoint, LEAN_PATH, { timeoutMs: 10_000 });
        latencies.add(performance.now() - t0);
      } catch {
        errors++;
      }
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: window }, loop));
  const { p50, p99 } = latencies.summary();
  return {
    reads: latencies.count,
    readErrors: errors,
    readP50: p50,
    readP99: p99,
    readsPerSecond: latencies.count / ((performance.now() - t0) / 1000),
  };
}
