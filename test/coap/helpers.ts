import { generate, parse, type Packet, type ParsedPacket } from 'coap-packet';
import { CoapEndpoint, type CoapEndpointOptions } from '../../lib/coap';
import { MemoryNetwork, type MemoryNetworkOptions, type MemoryTransport } from '../../lib/transport/memory';
import type { Peer } from '../../lib/transport/types';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `pred` every few ms until it holds (or throws after timeoutMs). */
export async function waitFor(pred: () => boolean, timeoutMs = 2000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

/** Small, fast timings for tests over the memory network. */
export const FAST: Partial<CoapEndpointOptions> = {
  ackTimeoutMs: 20,
  ackRandomFactor: 1.5,
  maxRetransmit: 4,
  exchangeLifetimeMs: 2000,
};

export interface Setup {
  network: MemoryNetwork;
  client: CoapEndpoint;
  server: CoapEndpoint;
  clientT: MemoryTransport;
  serverT: MemoryTransport;
  serverPeer: Peer;
  clientPeer: Peer;
  close(): Promise<void>;
}

/** Two endpoints on a memory network. */
export async function endpoints(
  net: MemoryNetworkOptions = {},
  clientOpts: Partial<CoapEndpointOptions> = {},
  serverOpts: Partial<CoapEndpointOptions> = {},
): Promise<Setup> {
  const network = new MemoryNetwork(net);
  const clientT = network.createTransport('10.0.0.1', 5683);
  const serverT = network.createTransport('10.0.0.2', 5683);
  const client = new CoapEndpoint(clientT, { ...FAST, ...clientOpts });
  const server = new CoapEndpoint(serverT, { ...FAST, ...serverOpts });
  await client.start();
  await server.start();
  return {
    network,
    client,
    server,
    clientT,
    serverT,
    serverPeer: serverT.peer,
    clientPeer: clientT.peer,
    async close() {
      await client.close();
      await server.close();
      network.close();
    },
  };
}

export interface RawMessage {
  data: Buffer;
  packet: ParsedPacket;
  from: Peer;
  at: number;
}

/** A scriptable raw CoAP peer: sends hand-made packets, records everything it receives. */
export class RawPeer {
  readonly received: RawMessage[] = [];
  onMessage: ((m: RawMessage, peer: RawPeer) => void) | undefined;
  private mid = 1000;

  constructor(readonly transport: MemoryTransport) {
    transport.onDatagram((data, from) => {
      let packet: ParsedPacket;
      try {
        packet = parse(data);
      } catch {
        packet = {
          code: 'bad',
          confirmable: false,
          reset: false,
          ack: false,
          messageId: -1,
          token: Buffer.alloc(0),
          options: [],
          payload: data,
        };
      }
      const m = { data, packet, from, at: performance.now() };
      this.received.push(m);
      this.onMessage?.(m, this);
    });
  }

  static async create(network: MemoryNetwork, address = '10.0.0.9', port = 5683): Promise<RawPeer> {
    const t = network.createTransport(address, port);
    await t.start();
    return new RawPeer(t);
  }

  get peer(): Peer {
    return this.transport.peer;
  }

  nextMid(): number {
    return this.mid++ & 0xffff;
  }

  send(to: Peer, packet: Packet): Buffer {
    const data = generate({ messageId: this.nextMid(), ...packet }, 65000);
    this.transport.send(data, to);
    return data;
  }

  sendRaw(to: Peer, data: Buffer): void {
    this.transport.send(data, to);
  }

  ack(to: Peer, messageId: number): void {
    this.transport.send(generate({ code: '0.00', ack: true, messageId }), to);
  }

  rst(to: Peer, messageId: number): void {
    this.transport.send(generate({ code: '0.00', reset: true, messageId }), to);
  }

  async waitFor(pred: (m: RawMessage) => boolean, timeoutMs = 2000, what = 'message'): Promise<RawMessage> {
    let found: RawMessage | undefined;
    await waitFor(() => (found = this.received.find(pred)) !== undefined, timeoutMs, what);
    return found!;
  }

  close(): Promise<void> {
    return this.transport.close();
  }
}

export function opt(packet: ParsedPacket, name: string): Buffer | undefined {
  return packet.options.find((o) => o.name === name)?.value;
}

export function uint(b: Buffer | undefined): number | undefined {
  if (b === undefined) return undefined;
  let v = 0;
  for (const x of b) v = v * 256 + x;
  return v;
}

export function uintBuf(v: number): Buffer {
  const out: number[] = [];
  while (v > 0) {
    out.unshift(v & 255);
    v = Math.floor(v / 256);
  }
  return Buffer.from(out);
}

export function pathOf(packet: ParsedPacket): string {
  return packet.options
    .filter((o) => o.name === 'Uri-Path')
    .map((o) => o.value.toString())
    .join('/');
}

/** Deterministic pseudo-random bytes. */
export function bytes(n: number, seed = 7): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 255;
  }
  return b;
}
