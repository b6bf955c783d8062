/**
 * Server side with our library: an Lwm2mServer on UDP, driven through its core API (read, observe),
 * as a flow or a script would use it.
 */
import { FirmwareJob, type FirmwareProgress } from '../../lib/firmware';
import { Lwm2mServer, NO_FLOOD_LIMITS } from '../../lib/server/lwm2m-server';
import type { Lwm2mServerOptions } from '../../lib/server/lwm2m-server';
import { FileObservationStore, FileRegistrationStore, FileSecurityStore, openJournal } from '../../lib/store/file';
import { RedisLink, RedisObservationStore, RedisRegistrationStore, RedisSecurityStore } from '../../lib/store/redis';
import { SecretBox } from '../../lib/store/secret-box';
import { closedLoop, CpuMeter, sleep } from '../stats';
import type { Handler } from '../rpc';

let server: Lwm2mServer | undefined;
const cpu = new CpuMeter();
let notifications = 0;
let registrations = 0;

function requireServer(): Lwm2mServer {
  if (!server) throw new Error('server not started');
  return server;
}

/** Waits until `count` registrations exist (or `timeoutMs`). */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return true;
    await sleep(20);
  }
  return check();
}

export const serverHandlers: Record<string, Handler> = {
  cpuMark: () => cpu.mark(),
  cpuRead: () => cpu.elapsedUs(),
  memory: () => process.memoryUsage(),

  /**
   * Starts the server on UDP; with `dtls`, also its DTLS listener, and `dtls.count` PSK devices
   * (`${prefix}1`.., identity = endpoint name, one shared key) in its security store. Resolves with the
   * plain port, or with both ports when `dtls` is given.
   */
  async start(args: {
    coap?: Record<string, unknown>;
    dtls?: { prefix: string; count: number; keyHex: string };
    /** Where registrations and observations are kept (section 8): memory by default. */
    store?: { kind: 'file'; dir: string } | { kind: 'redis'; url: string; prefix: string };
  }): Promise<number | { port: number; securePort: number }> {
    server = new Lwm2mServer({
      address: '127.0.0.1',
      port: 0,
      coap: args.coap ?? {},
      // Throughput is measured here, not the flood guards: many devices per address, many notifications each.
      ...NO_FLOOD_LIMITS,
      ...(args.dtls ? { dtls: { port: 0 } } : {}),
      ...(args.store ? await openStores(args.store) : {}),
    });
    server.on('error', () => undefined);
    server.on('registered', () => registrations++);
    server.on('notification', () => notifications++);
    if (args.dtls) {
      const key = Buffer.from(args.dtls.keyHex, 'hex');
      for (let i = 1; i <= args.dtls.count; i++) {
        const endpoint = `${args.dtls.prefix}${i}`;
        await server.securityStore.add({ endpoint, mode: 'psk', identity: endpoint, key });
      }
    }
    const address = await server.start();
    if (!args.dtls) return address.port;
    return { port: address.port, securePort: server.secureAddress!.port };
  },

  registrations: () => registrations,
  notifications: () => notifications,

  async waitRegistered(args: { count: number; timeoutMs: number }) {
    const s = requireServer();
    await waitFor(async () => (await s.registrations.size()) >= args.count, args.timeoutMs);
    return s.registrations.size();
  },

  /** Reads `path` round-robin over endpoints prefix1..prefixN, `window` at a time, for `seconds`. */
  async readLoop(args: { prefix: string; count: number; path: string; window: number; seconds: number }) {
    const s = requireServer();
    return closedLoop({
      window: args.window,
      seconds: args.seconds,
      op: (i) => s.read(`${args.prefix}${(i % args.count) + 1}`, args.path, { timeoutMs: 10_000 }),
    });
  },

  /** Observes `path` on every device, `window` at a time; resolves with how many succeeded and the time. */
  async observeAll(args: { prefix: string; count: number; path: string; window: number }) {
    const s = requireServer();
    const t0 = performance.now();
    let next = 0;
    let ok = 0;
    let firstError: string | undefined;
    await Promise.all(
      Array.from({ length: args.window }, async () => {
        while (next < args.count) {
          const i = next++;
          try {
            await s.observe(`${args.prefix}${i + 1}`, args.path, { timeoutMs: 10_000 });
            ok++;
          } catch (err) {
            firstError ??= (err as Error).message;
          }
        }
      }),
    );
    return { ok, seconds: (performance.now() - t0) / 1000, firstError };
  },
};

/** The file journal or the Redis link the server runs on, closed by `closeStores`. */
let closeStore: (() => Promise<void>) | undefined;

async function openStores(
  store: { kind: 'file'; dir: string } | { kind: 'redis'; url: string; prefix: string },
): Promise<Partial<Lwm2mServerOptions>> {
  if (store.kind === 'file') {
    const journal = openJournal(store.dir, 'server', { secret: 'bench' });
    closeStore = () => journal.close();
    return {
      registrationStore: new FileRegistrationStore(journal),
      observationStore: new FileObservationStore(journal),
      securityStore: new FileSecurityStore(journal),
    };
  }
  const link = new RedisLink({
    url: store.url,
    prefix: store.prefix,
    instanceId: 'bench',
    secrets: new SecretBox('bench'),
  });
  const registrationStore = new RedisRegistrationStore(link);
  const observationStore = new RedisObservationStore(link);
  await link.connect();
  await Promise.all([registrationStore.load(), observationStore.load()]);
  closeStore = () => link.close();
  return { registrationStore, observationStore, securityStore: new RedisSecurityStore(link), cluster: link };
}

Object.assign(serverHandlers, {
  /** Stops the server and closes its store (section 8 starts one per store). */
  async stopServer() {
    await server?.stop();
    server = undefined;
    await closeStore?.();
    closeStore = undefined;
    registrations = 0;
    notifications = 0;
  },
});

/** A package the simulator installs as `version` (it reads `version=X` at its start), `size` bytes. */
function firmwareImage(version: string, size: number): Buffer {
  const image = Buffer.alloc(size);
  for (let i = 0; i < size; i++) image[i] = (i * 31 + 7) & 255;
  image.write(`version=${version}\n`, 0, 'latin1');
  return image;
}

Object.assign(serverHandlers, {
  /**
   * One FirmwareJob (push or pull) of a `size`-byte image to `endpoint`. The download is timed from the
   * job's first 'downloading' progress to its first 'downloaded' one, with the server's CPU over the same span.
   */
  async firmware(args: { endpoint: string; method: 'push' | 'pull'; size: number; version: string }) {
    const s = requireServer();
    const job = new FirmwareJob(s, {
      endpoint: args.endpoint,
      image: firmwareImage(args.version, args.size),
      method: args.method,
      expectedFirmwareVersion: args.version,
      timeouts: { requestMs: 10_000, downloadMs: 120_000, updateMs: 30_000 },
      pollIntervalMs: 100,
    });
    let downloadStart: number | undefined;
    let downloadEnd: number | undefined;
    let downloadCpuUs: number | undefined;
    const meter = new CpuMeter();
    job.on('progress', (p: FirmwareProgress) => {
      if (p.state === 'downloading' && downloadStart === undefined) {
        downloadStart = performance.now();
        meter.mark();
      } else if (p.state === 'downloaded' && downloadStart !== undefined && downloadEnd === undefined) {
        downloadEnd = performance.now();
        downloadCpuUs = meter.elapsedUs();
      }
    });
    const t0 = performance.now();
    cpu.mark();
    const result = await job.run();
    const totalCpuUs = cpu.elapsedUs();
    if (downloadStart === undefined || downloadEnd === undefined || downloadCpuUs === undefined) {
      throw new Error('the job reported no download');
    }
    return {
      ok: result.ok,
      method: result.method,
      firmwareVersion: result.firmwareVersion,
      downloadSeconds: (downloadEnd - downloadStart) / 1000,
      downloadCpuUs,
      totalSeconds: (performance.now() - t0) / 1000,
      totalCpuUs,
    };
  },
} satisfies Record<string, Handler>);

export async function serverCleanup(): Promise<void> {
  await server?.stop();
}
