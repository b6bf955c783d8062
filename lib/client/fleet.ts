/**
 * A fleet of simulated devices in one process, for tests, benchmarks and `lwm2m-sim`.
 *
 * A server tells devices apart only by source address and port, so every device has its own socket
 * (its own UdpTransport + CoapEndpoint). Sockets are spread over a list of local addresses (on Linux
 * the whole of 127/8 reaches the loopback interface, so 127.0.1.1-127.0.1.40 gives forty times one
 * address's port range) and, optionally, an explicit port range. Devices start at a bounded rate and
 * with a bounded number of registrations in flight, so a large fleet does not flood the server.
 */
import { EventEmitter } from 'node:events';
import { isIPv4 } from 'node:net';
import type { CoapEndpointOptions } from '../coap/types';
import { seededRandom } from '../transport/memory';
import { UdpTransport } from '../transport/udp';
import { Lwm2mClient, type Lwm2mClientOptions, type ObjectChoice, type RetryPolicy } from './client';
import type { ClientLwm2mVersion } from './attributes';

export interface FleetOptions {
  /** `coap://host:port` of the LwM2M server ('' with `bootstrapUri`: the devices are given one by bootstrap). */
  serverUri: string;
  count: number;
  /** Endpoint names are prefix + index (default 'sim-'). */
  prefix: string;
  /** First index (default 1): sim-1, sim-2, ... */
  startIndex: number;
  /** Objects of every device besides 0, 1 and 3 (default [3303]). */
  objects: Array<number | string | ObjectChoice>;
  lifetime: number;
  lwm2mVersion: ClientLwm2mVersion;
  binding: string;
  queueMode: boolean;
  contentFormats?: number[];
  /**
   * Local addresses to bind, as a list or text: '127.0.0.1', '127.0.1.1-127.0.1.40', '127.0.0.1,127.0.0.2'.
   * Default: one address chosen by the OS for the server's family (0.0.0.0 / ::).
   */
  bindAddresses?: string[] | string;
  /** Local ports, e.g. [20000, 29999] or '20000-29999' (default: ephemeral ports). */
  portRange?: [number, number] | string;
  /** Devices per address before the next one is used (default: spread evenly). */
  devicesPerAddress?: number;
  /** Devices started per second (default 500). */
  registrationRate: number;
  /** Registrations in flight at once (default 100). */
  concurrency: number;
  /** Simulated value changes: every device changes its values once per this many ms (0 = never). */
  changeEveryMs: number;
  /** Notifications as CON (default NON). */
  confirmableNotifications: boolean;
  coap: Partial<CoapEndpointOptions>;
  registerRetry: Partial<RetryPolicy>;
  /**
   * DTLS with a pre-shared key (a `coaps://` serverUri): `identity` as given for a single device, or each
   * device's endpoint name when it is absent (a fleet whose devices share one key, as a test bench may).
   */
  psk?: { identity?: string; key: Buffer };
  /** LwM2M Bootstrap-Server of every device (see Lwm2mClientOptions.bootstrapUri). */
  bootstrapUri?: string;
  /** PSK of the Bootstrap-Server account (a `coaps://` bootstrapUri); `identity` defaults to the endpoint name. */
  bootstrapPsk?: { identity?: string; key: Buffer };
  /** Seed for the devices' simulated values (default: random). */
  seed?: number;
  /** Per-device extra options. */
  client?: (index: number, endpointName: string) => Partial<Lwm2mClientOptions>;
}

export interface FleetStats {
  devices: number;
  /** Devices whose socket is bound. */
  started: number;
  /** Devices registered right now. */
  registered: number;
  /** Devices that registered at least once. */
  everRegistered: number;
  /** Devices that gave up (socket could not be bound, or registration abandoned). */
  failed: number;
  registrations: number;
  updates: number;
  reRegistrations: number;
  registrationFailures: number;
  deregistrations: number;
  requests: number;
  notifications: number;
  observations: number;
  sends: number;
  /** Bootstraps finished, and bootstrap attempts that failed (devices with a bootstrapUri). */
  bootstraps: number;
  bootstrapFailures: number;
  valueChanges: number;
  /** ms since the fleet started. */
  elapsedMs: number;
  /** ms from start until every device had registered once (undefined until then). */
  allRegisteredMs?: number;
}

export interface FleetEvents {
  registered: [client: Lwm2mClient];
  failed: [client: Lwm2mClient, error: Error];
}

const FLEET_DEFAULTS: Omit<FleetOptions, 'serverUri' | 'count'> = {
  prefix: 'sim-',
  startIndex: 1,
  objects: [3303],
  lifetime: 300,
  lwm2mVersion: '1.1',
  binding: 'U',
  queueMode: false,
  registrationRate: 500,
  concurrency: 100,
  changeEveryMs: 0,
  confirmableNotifications: false,
  coap: {},
  registerRetry: {},
};

interface Slot {
  client: Lwm2mClient;
  index: number;
  address?: string;
  state: 'waiting' | 'starting' | 'up' | 'failed';
  everRegistered: boolean;
}

export class Fleet extends EventEmitter<FleetEvents> {
  readonly options: FleetOptions;
  readonly devices: Lwm2mClient[] = [];
  private readonly slots: Slot[] = [];
  private readonly addresses: string[];
  private readonly perAddress: number;
  private readonly portCursor = new Map<string, number>();
  private readonly ports: [number, number] | undefined;
  private readonly startedAt = performance.now();
  private launchTimer: NodeJS.Timeout | undefined;
  private tickTimer: NodeJS.Timeout | undefined;
  private tick = 0;
  private next = 0;
  private inFlight = 0;
  private stopping = false;
  private stopped: Promise<FleetStats> | undefined;
  private everRegistered = 0;
  private failedCount = 0;
  private valueChanges = 0;
  private allRegisteredMs: number | undefined;
  private waiters: Array<{ resolve: (s: FleetStats) => void; reject: (e: Error) => void }> = [];
  private tokens = 0;
  private lastRefill = performance.now();

  constructor(options: Partial<FleetOptions> & { serverUri: string; count: number }) {
    super();
    const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
    this.options = { ...FLEET_DEFAULTS, ...defined } as FleetOptions;
    const o = this.options;
    if (!Number.isInteger(o.count) || o.count < 0) throw new RangeError('count must be a whole number >= 0');
    if (!(o.registrationRate > 0)) throw new RangeError('registrationRate must be > 0');
    if (!(o.concurrency >= 1)) throw new RangeError('concurrency must be >= 1');
    this.addresses =
      o.bindAddresses === undefined
        ? []
        : typeof o.bindAddresses === 'string'
          ? parseAddressList(o.bindAddresses)
          : o.bindAddresses.flatMap(parseAddressList);
    this.perAddress =
      o.devicesPerAddress ?? (this.addresses.length > 0 ? Math.ceil(o.count / this.addresses.length) : o.count);
    this.ports = o.portRange === undefined ? undefined : parsePortRange(o.portRange);
    const random = o.seed === undefined ? undefined : seededRandom(o.seed);
    for (let i = 0; i < o.count; i++) {
      const index = o.startIndex + i;
      const endpointName = `${o.prefix}${index}`;
      const address =
        this.addresses.length > 0
          ? this.addresses[Math.floor(i / Math.max(1, this.perAddress)) % this.addresses.length]
          : undefined;
      const client = new Lwm2mClient({
        endpointName,
        serverUri: o.serverUri === '' ? undefined : o.serverUri,
        bootstrapUri: o.bootstrapUri,
        bootstrapPsk: o.bootstrapPsk
          ? { identity: o.bootstrapPsk.identity ?? endpointName, key: o.bootstrapPsk.key }
          : undefined,
        objects: o.objects,
        lifetime: o.lifetime,
        lwm2mVersion: o.lwm2mVersion,
        binding: o.binding,
        queueMode: o.queueMode,
        contentFormats: o.contentFormats,
        psk: o.psk ? { identity: o.psk.identity ?? endpointName, key: o.psk.key } : undefined,
        bindAddress: address,
        transport:
          this.ports === undefined
            ? undefined
            : (local) => new UdpTransport({ address: local.address, port: this.nextPort(address) }),
        coap: { sweepIntervalMs: 5000, ...o.coap },
        confirmableNotifications: o.confirmableNotifications,
        registerRetry: o.registerRetry,
        random: random === undefined ? undefined : seededRandom(Math.floor(random() * 2 ** 32)),
        ...o.client?.(index, endpointName),
      });
      client.on('registered', () => {
        const slot = this.slots[i];
        if (!slot.everRegistered) {
          slot.everRegistered = true;
          this.everRegistered++;
          if (this.everRegistered === this.slots.length) {
            this.allRegisteredMs = performance.now() - this.startedAt;
            this.settle();
          }
        }
        this.emit('registered', client);
      });
      this.slots.push({ client, index, address, state: 'waiting', everRegistered: false });
      this.devices.push(client);
    }
  }

  /** Starts launching devices (called by startFleet). */
  launch(): void {
    if (this.slots.length === 0) {
      this.allRegisteredMs = 0;
      this.settle();
    }
    this.pump();
    if (this.options.changeEveryMs > 0) this.startTicker();
  }

  /** Resolves with the stats once every device has registered; rejects when one gives up or on timeout. */
  whenRegistered(options: { timeoutMs?: number } = {}): Promise<FleetStats> {
    if (this.everRegistered === this.slots.length) return Promise.resolve(this.stats());
    if (this.failedCount > 0) return Promise.reject(this.failure());
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter = {
        resolve: (s: FleetStats) => {
          if (timer) clearTimeout(timer);
          resolve(s);
        },
        reject: (e: Error) => {
          if (timer) clearTimeout(timer);
          reject(e);
        },
      };
      if (options.timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          const s = this.stats();
          reject(new Error(`fleet: ${s.everRegistered}/${s.devices} registered after ${options.timeoutMs} ms`));
        }, options.timeoutMs);
      }
      this.waiters.push(waiter);
    });
  }

  /** One simulated change on every registered device; returns the number of instances changed. */
  changeValues(): number {
    let count = 0;
    for (const client of this.devices) if (client.registered) count += client.changeValues();
    this.valueChanges += count;
    return count;
  }

  stats(): FleetStats {
    const s: FleetStats = {
      devices: this.slots.length,
      started: 0,
      registered: 0,
      everRegistered: this.everRegistered,
      failed: this.failedCount,
      registrations: 0,
      updates: 0,
      reRegistrations: 0,
      registrationFailures: 0,
      deregistrations: 0,
      requests: 0,
      notifications: 0,
      observations: 0,
      sends: 0,
      bootstraps: 0,
      bootstrapFailures: 0,
      valueChanges: this.valueChanges,
      elapsedMs: Math.round(performance.now() - this.startedAt),
    };
    if (this.allRegisteredMs !== undefined) s.allRegisteredMs = Math.round(this.allRegisteredMs);
    for (const client of this.devices) {
      if (client.registered) s.registered++;
      if (client.localAddress() !== undefined) s.started++;
      const c = client.stats();
      s.registrations += c.registrations;
      s.updates += c.updates;
      s.reRegistrations += c.reRegistrations;
      s.registrationFailures += c.registrationFailures;
      s.deregistrations += c.deregistrations;
      s.requests += c.requests;
      s.notifications += c.notifications;
      s.observations += c.observations;
      s.sends += c.sends;
      s.bootstraps += c.bootstraps;
      s.bootstrapFailures += c.bootstrapFailures;
    }
    return s;
  }

  /**
   * De-registers every device (at `concurrency` at a time, each given `timeoutMs`), closes every socket
   * and stops every timer.
   */
  stop(options: { deregister?: boolean; concurrency?: number; timeoutMs?: number } = {}): Promise<FleetStats> {
    if (this.stopped !== undefined) return this.stopped;
    this.stopping = true;
    if (this.launchTimer !== undefined) clearTimeout(this.launchTimer);
    if (this.tickTimer !== undefined) clearTimeout(this.tickTimer);
    this.launchTimer = this.tickTimer = undefined;
    const rejectWaiters = () => {
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) w.reject(new Error('fleet stopped'));
    };
    rejectWaiters();
    this.stopped = (async () => {
      const queue = [...this.devices];
      const workers = Math.max(1, options.concurrency ?? this.options.concurrency);
      await Promise.all(
        Array.from({ length: Math.min(workers, queue.length) }, async () => {
          for (let client = queue.shift(); client !== undefined; client = queue.shift()) {
            await client
              .stop({ deregister: options.deregister, timeoutMs: options.timeoutMs ?? 3000 })
              .catch(() => undefined);
          }
        }),
      );
      return this.stats();
    })();
    return this.stopped;
  }

  // ---------------------------------------------------------------- launching

  private pump(): void {
    if (this.stopping) return;
    const rate = this.options.registrationRate;
    const now = performance.now();
    this.tokens = Math.min(Math.max(1, Math.min(rate / 10, 20)), this.tokens + ((now - this.lastRefill) * rate) / 1000);
    this.lastRefill = now;
    while (this.next < this.slots.length && this.inFlight < this.options.concurrency && this.tokens >= 1) {
      this.tokens -= 1;
      this.startSlot(this.slots[this.next++]);
    }
    if (this.next < this.slots.length && this.launchTimer === undefined) {
      const wait = this.tokens >= 1 ? 5 : Math.max(1, ((1 - this.tokens) * 1000) / rate);
      this.launchTimer = setTimeout(() => {
        this.launchTimer = undefined;
        this.pump();
      }, wait);
    }
  }

  private startSlot(slot: Slot): void {
    slot.state = 'starting';
    this.inFlight++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.inFlight--;
      slot.client.removeListener('registrationFailed', release);
      this.pump();
    };
    // the slot is free again at the first answer to the first Register, whatever it was
    slot.client.on('registrationFailed', release);
    void this.bindAndStart(slot, release);
  }

  private async bindAndStart(slot: Slot, release: () => void): Promise<void> {
    const client = slot.client;
    for (let attempt = 0; ; attempt++) {
      try {
        await client.start();
        slot.state = 'up';
        release();
        return;
      } catch (err) {
        if (this.stopping) {
          release();
          return;
        }
        // with an explicit port range, a port someone else holds: the factory hands out the next one
        if (this.ports !== undefined && (err as NodeJS.ErrnoException).code === 'EADDRINUSE' && attempt < 100) continue;
        slot.state = 'failed';
        this.failedCount++;
        release();
        this.emit('failed', client, err as Error);
        const waiters = this.waiters;
        this.waiters = [];
        for (const w of waiters) w.reject(this.failure());
        return;
      }
    }
  }

  private nextPort(address: string | undefined): number {
    const [from, to] = this.ports!;
    const key = address ?? '';
    const port = this.portCursor.get(key) ?? from;
    this.portCursor.set(key, port >= to ? from : port + 1);
    return port;
  }

  private failure(): Error {
    const s = this.stats();
    return new Error(`fleet: ${s.failed} of ${s.devices} devices failed to start or register`);
  }

  private settle(): void {
    const waiters = this.waiters;
    this.waiters = [];
    const s = this.stats();
    for (const w of waiters) w.resolve(s);
  }

  // ---------------------------------------------------------------- simulated changes

  /** Spreads value changes over the period: each tick handles one slice of the devices. */
  private startTicker(): void {
    const period = this.options.changeEveryMs;
    const tickMs = Math.min(period, 100);
    const slices = Math.max(1, Math.round(period / tickMs));
    const run = () => {
      this.tickTimer = undefined;
      if (this.stopping) return;
      const slice = this.tick++ % slices;
      for (let i = slice; i < this.devices.length; i += slices) {
        const client = this.devices[i];
        if (client.registered) this.valueChanges += client.changeValues();
      }
      this.tickTimer = setTimeout(run, tickMs);
    };
    this.tickTimer = setTimeout(run, tickMs);
  }
}

/** Builds a fleet and starts launching its devices; see Fleet.whenRegistered(). */
export async function startFleet(
  options: Partial<FleetOptions> & { serverUri: string; count: number },
): Promise<Fleet> {
  const fleet = new Fleet(options);
  fleet.launch();
  return fleet;
}

/** '127.0.0.1-127.0.0.20' / '127.0.0.1,::1' -> a list of addresses. */
export function parseAddressList(text: string): string[] {
  const out: string[] = [];
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const dash = part.indexOf('-');
    if (dash < 0) {
      out.push(part);
      continue;
    }
    const from = part.slice(0, dash).trim();
    let to = part.slice(dash + 1).trim();
    if (!isIPv4(from)) throw new RangeError(`address range "${part}": only IPv4 ranges are supported`);
    if (/^\d{1,3}$/.test(to)) to = from.split('.').slice(0, 3).join('.') + '.' + to;
    if (!isIPv4(to)) throw new RangeError(`address range "${part}": "${to}" is not an IPv4 address`);
    const a = ipv4ToInt(from);
    const b = ipv4ToInt(to);
    if (b < a) throw new RangeError(`address range "${part}" is empty`);
    if (b - a > 65535) throw new RangeError(`address range "${part}" is too large`);
    for (let n = a; n <= b; n++) {
      const last = n & 255;
      if (last === 0 || last === 255) continue; // network / broadcast-looking addresses
      out.push(intToIpv4(n));
    }
  }
  if (out.length === 0) throw new RangeError(`no addresses in "${text}"`);
  return out;
}

export function parsePortRange(range: [number, number] | string): [number, number] {
  let from: number;
  let to: number;
  if (typeof range === 'string') {
    const match = /^\s*(\d{1,5})\s*(?:-\s*(\d{1,5}))?\s*$/.exec(range);
    if (!match) throw new RangeError(`invalid port range "${range}"`);
    from = Number(match[1]);
    to = match[2] === undefined ? from : Number(match[2]);
  } else [from, to] = range;
  if (!(from >= 1 && to <= 65535 && from <= to)) throw new RangeError(`invalid port range ${from}-${to}`);
  return [from, to];
}

function ipv4ToInt(address: string): number {
  return address.split('.').reduce((n, part) => n * 256 + Number(part), 0);
}

function intToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}
