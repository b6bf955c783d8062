/** An in-memory datagram network for tests: loss, duplication, reordering and delay, driven by a seeded RNG. */

import { normaliseAddress, peerKey } from './peer';
import type { DatagramTransport, Peer, PeerAddress } from './types';

/** How a simulated link mistreats datagrams. Rates are probabilities in [0, 1]. */
export interface LinkConditions {
  /** Probability a datagram is lost. */
  loss?: number;
  /** Probability a datagram is delivered twice. */
  duplicate?: number;
  /** Probability a datagram is held back so that later ones overtake it. */
  reorder?: number;
  /** Fixed one-way delay in ms (0 = next turn of the event loop). */
  delayMs?: number;
  /** Extra random delay in [0, jitterMs). */
  jitterMs?: number;
}

export interface MemoryNetworkOptions extends LinkConditions {
  /** Seed of the deterministic RNG (default 1). */
  seed?: number;
}

/** What a tap sees; return false to drop the datagram (counted as lost). */
export type NetworkTap = (data: Buffer, from: Peer, to: Peer) => boolean | void;

export interface MemoryNetworkStats {
  sent: number;
  delivered: number;
  lost: number;
  duplicated: number;
  reordered: number;
  /** Addressed to nobody listening. */
  unroutable: number;
}

/** mulberry32: tiny, fast, good enough for simulating loss. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * An in-process datagram network for tests: transports attach at an address/port and exchange
 * datagrams with configurable loss, duplication, reordering and delay, driven by a seeded RNG.
 */
export class MemoryNetwork {
  /** Default conditions for every link; mutable at any time. */
  conditions: LinkConditions;
  /** Sees every datagram before the link conditions apply. */
  tap: NetworkTap | undefined;
  readonly stats: MemoryNetworkStats = { sent: 0, delivered: 0, lost: 0, duplicated: 0, reordered: 0, unroutable: 0 };
  readonly random: () => number;
  private readonly links = new Map<string, LinkConditions>();
  private readonly nodes = new Map<string, MemoryTransport>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private immediateQueue: Array<{ to: string; data: Buffer; from: Peer }> = [];
  private immediate: NodeJS.Immediate | undefined;
  private nextHost = 1;
  private nextPort = 40000;

  constructor(options: MemoryNetworkOptions = {}) {
    const { seed, ...conditions } = options;
    this.conditions = conditions;
    this.random = seededRandom(seed ?? 1);
  }

  /** A new transport at `address:port` (defaults: 10.0.0.N and an ephemeral port). */
  createTransport(address?: string, port?: number): MemoryTransport {
    return new MemoryTransport(this, address ?? `10.0.0.${this.nextHost++}`, port ?? 0);
  }

  /** Conditions for one direction (`from` -> `to`, peer keys), overriding the defaults. */
  setLink(from: PeerAddress, to: PeerAddress, conditions: LinkConditions | undefined): void {
    const k = keyOf(from) + '>' + keyOf(to);
    if (conditions === undefined) this.links.delete(k);
    else this.links.set(k, conditions);
  }

  /** Cancels every datagram in flight. */
  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.immediate = undefined;
    this.immediateQueue = [];
  }

  /** @internal */
  attach(t: MemoryTransport, address: string, port: number): PeerAddress {
    if (port === 0) {
      do port = this.nextPort++;
      while (this.nodes.has(peerKey(address, port)));
    }
    const key = peerKey(address, port);
    if (this.nodes.has(key)) {
      const err = new Error(`address in use ${key}`) as NodeJS.ErrnoException;
      err.code = 'EADDRINUSE';
      throw err;
    }
    this.nodes.set(key, t);
    return { address, port };
  }

  /** @internal */
  detach(key: string, t: MemoryTransport): void {
    if (this.nodes.get(key) === t) this.nodes.delete(key);
  }

  /** @internal */
  transmit(data: Buffer, from: Peer, toAddr: PeerAddress): void {
    this.stats.sent++;
    const address = normaliseAddress(toAddr.address);
    const to: Peer = { address, port: toAddr.port, key: peerKey(address, toAddr.port) };
    if (this.tap !== undefined && this.tap(data, from, to) === false) {
      this.stats.lost++;
      return;
    }
    const c = this.links.get(from.key + '>' + to.key) ?? this.conditions;
    const rnd = this.random;
    if (c.loss && rnd() < c.loss) {
      this.stats.lost++;
      return;
    }
    const copy = Buffer.from(data); // the sender may reuse its buffer
    this.schedule(copy, from, to.key, c);
    if (c.duplicate && rnd() < c.duplicate) {
      this.stats.duplicated++;
      this.schedule(copy, from, to.key, c);
    }
  }

  private schedule(data: Buffer, from: Peer, to: string, c: LinkConditions): void {
    const rnd = this.random;
    let delay = (c.delayMs ?? 0) + (c.jitterMs ? rnd() * c.jitterMs : 0);
    if (c.reorder && rnd() < c.reorder) {
      this.stats.reordered++;
      delay += 1 + ((c.delayMs ?? 0) + (c.jitterMs ?? 0) + 2) * (1 + rnd());
    }
    if (delay <= 0) {
      this.immediateQueue.push({ to, data, from });
      if (this.immediate === undefined) this.immediate = setImmediate(this.flush);
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.deliver(to, data, from);
    }, delay);
    this.timers.add(timer);
  }

  private readonly flush = (): void => {
    this.immediate = undefined;
    const q = this.immediateQueue;
    this.immediateQueue = [];
    for (let i = 0; i < q.length; i++) this.deliver(q[i].to, q[i].data, q[i].from);
  };

  private deliver(to: string, data: Buffer, from: Peer): void {
    const node = this.nodes.get(to);
    if (node === undefined) {
      this.stats.unroutable++;
      return;
    }
    this.stats.delivered++;
    node.receive(data, { address: from.address, port: from.port, key: from.key });
  }
}

function keyOf(p: PeerAddress): string {
  const address = normaliseAddress(p.address);
  return peerKey(address, p.port);
}

/** A DatagramTransport attached to a MemoryNetwork. */
export class MemoryTransport implements DatagramTransport {
  onError: (err: Error) => void = () => {};
  private listener: ((data: Buffer, peer: Peer) => void) | undefined;
  private self: Peer | undefined;
  private closed = false;

  constructor(
    readonly network: MemoryNetwork,
    private readonly address: string,
    private readonly port: number,
  ) {}

  start(): Promise<PeerAddress> {
    if (this.closed) return Promise.reject(new Error('transport closed'));
    if (this.self === undefined) {
      try {
        const a = this.network.attach(this, this.address, this.port);
        this.self = { address: a.address, port: a.port, key: peerKey(a.address, a.port) };
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return Promise.resolve({ address: this.self.address, port: this.self.port });
  }

  send(data: Buffer, peer: PeerAddress): void {
    if (this.closed || this.self === undefined) return;
    this.network.transmit(data, this.self, peer);
  }

  onDatagram(listener: (data: Buffer, peer: Peer) => void): void {
    this.listener = listener;
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      if (this.self !== undefined) this.network.detach(this.self.key, this);
    }
    return Promise.resolve();
  }

  localAddress(): PeerAddress | undefined {
    return this.self === undefined ? undefined : { address: this.self.address, port: this.self.port };
  }

  /** This transport as a Peer (after start). */
  get peer(): Peer {
    if (this.self === undefined) throw new Error('not started');
    return this.self;
  }

  /** @internal */
  receive(data: Buffer, from: Peer): void {
    if (this.closed || this.listener === undefined) return;
    try {
      this.listener(data, from);
    } catch (err) {
      this.onError(err instanceof Error ? err : new Error(String(err)));
    }
  }
}

/** Two started transports on a fresh network with the given conditions. */
export async function createMemoryPair(
  options: MemoryNetworkOptions = {},
): Promise<{ network: MemoryNetwork; a: MemoryTransport; b: MemoryTransport }> {
  const network = new MemoryNetwork(options);
  const a = network.createTransport();
  const b = network.createTransport();
  await a.start();
  await b.start();
  return { network, a, b };
}
