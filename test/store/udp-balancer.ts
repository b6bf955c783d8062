import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';

/**
 * A UDP load balancer with source affinity and fail-over, as in front of a server cluster: each device (source
 * address and port) gets its own upstream socket, bound to the first live backend until that backend is marked
 * down; then its next datagram goes to the next live one, from the same upstream socket (so the servers see the
 * device at the same address).
 */
export class UdpBalancer {
  private readonly front = dgram.createSocket('udp4');
  private readonly flows = new Map<string, { upstream: dgram.Socket; backend: number }>();
  private readonly down = new Set<number>();

  constructor(private readonly backends: number[]) {}

  async start(): Promise<number> {
    this.front.on('message', (data, from) => this.fromDevice(data, from));
    await new Promise<void>((resolve) => this.front.bind(0, '127.0.0.1', () => resolve()));
    return (this.front.address() as AddressInfo).port;
  }

  /** The backend on `port` is gone (a health check would tell a real balancer). */
  markDown(port: number): void {
    this.down.add(port);
  }

  async close(): Promise<void> {
    for (const { upstream } of this.flows.values()) upstream.close();
    this.flows.clear();
    await new Promise<void>((resolve) => this.front.close(() => resolve()));
  }

  private fromDevice(data: Buffer, from: dgram.RemoteInfo): void {
    const key = `${from.address}:${from.port}`;
    let flow = this.flows.get(key);
    if (!flow) {
      const upstream = dgram.createSocket('udp4');
      upstream.bind(0, '127.0.0.1');
      // What a server sends to the device's upstream address reaches the device, from the balancer's address.
      upstream.on('message', (answer) => this.front.send(answer, from.port, from.address));
      flow = { upstream, backend: this.pick() };
      this.flows.set(key, flow);
    }
    if (this.down.has(flow.backend)) flow.backend = this.pick();
    flow.upstream.send(data, flow.backend, '127.0.0.1');
  }

  /** The first backend that is up: every device on one instance while it lives (the test knows where). */
  private pick(): number {
    const live = this.backends.find((port) => !this.down.has(port));
    if (live === undefined) throw new Error('no backend left');
    return live;
  }
}
