/**
 * The baseline: raw `dgram` on loopback, with nothing on top. Server side: an echo socket and a
 * counting sink. Load side: ping-pong with a window of outstanding datagrams, and a one-way blast.
 * Also the raw CoAP clients used against our CoAP endpoint (pre-encoded GETs, as test/coap/bench did).
 */
import * as dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { CoapEndpoint } from '../../lib/coap';
import { UdpTransport } from '../../lib/transport/udp';
import { CpuMeter, Latencies, sleep } from '../stats';
import type { Handler } from '../rpc';

const sockets: dgram.Socket[] = [];
let sinkCount = 0;
let echoed = 0;
let endpoint: CoapEndpoint | undefined;
const cpu = new CpuMeter();

function bind(address = '127.0.0.1', recvBufferSize?: number): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket({ type: 'udp4', recvBufferSize });
    s.once('error', reject);
    s.bind(0, address, () => {
      s.off('error', reject);
      sockets.push(s);
      resolve(s);
    });
  });
}

/** A CON GET with a 4-byte token and Uri-Path "x" (10 bytes, as test/coap/bench sent). */
function coapGet(mid: number): Buffer {
  return Buffer.from([0x44, 0x01, mid >> 8, mid & 255, 1, 2, 3, 4, 0xb1, 0x78]);
}

export const rawHandlers: Record<string, Handler> = {
  cpuMark: () => cpu.mark(),
  cpuRead: () => cpu.elapsedUs(),

  /** Server side: echo every datagram back. */
  async echoStart() {
    const s = await bind('127.0.0.1', 4 << 20);
    s.on('message', (m, r) => {
      echoed++;
      s.send(m, r.port, r.address);
    });
    return (s.address() as AddressInfo).port;
  },
  echoCount: () => echoed,

  /** Server side: count datagrams. */
  async sinkStart() {
    const s = await bind('127.0.0.1', 4 << 20);
    s.on('message', () => sinkCount++);
    return (s.address() as AddressInfo).port;
  },
  sinkCount: () => sinkCount,

  /** Server side: our CoAP message layer answering every GET with 2.05 (the CoAP request handling figure). */
  async coapStart() {
    endpoint = new CoapEndpoint(new UdpTransport({ address: '127.0.0.1', port: 0, recvBufferSize: 4 << 20 }), {
      // one client socket carries the whole window: per-peer and per-address limits off, as in test/coap/bench
      maxRequestsPerSecondPerAddress: 0,
      maxConcurrentPerPeer: 1024,
    });
    const ok = Buffer.from('ok');
    endpoint.setRequestHandler(() => ({ code: '2.05', payload: ok }));
    const { port } = await endpoint.start();
    return port;
  },

  /**
   * Load side: keeps `window` datagrams outstanding against `port`; each answer sends the next.
   * With `coap`, pre-encoded CoAP GETs (new message id each) instead of a 14-byte ping.
   */
  async pingPong(args: { port: number; window: number; seconds: number; coap?: boolean; warmupMs?: number }) {
    const s = await bind('127.0.0.1', 4 << 20);
    const ping = Buffer.from('ping-ping-ping');
    let mid = 0;
    let received = 0;
    let running = true;
    const latencies = new Latencies();
    const trackLatency = args.window === 1;
    let sentAt = 0;
    const sendOne = () => {
      if (trackLatency) sentAt = performance.now();
      s.send(args.coap ? coapGet(mid++ & 0xffff) : ping, args.port, '127.0.0.1');
    };
    let measuring = false;
    s.on('message', () => {
      received++;
      if (trackLatency && measuring) latencies.add(performance.now() - sentAt);
      if (running) sendOne();
    });
    // a lost datagram would shrink the window: top it up when nothing came back for 200 ms
    let last = 0;
    const topUp = setInterval(() => {
      if (received === last) for (let i = 0; i < args.window; i++) sendOne();
      last = received;
    }, 200);
    for (let i = 0; i < args.window; i++) sendOne();
    await sleep(args.warmupMs ?? 300);
    measuring = true;
    const start = received;
    const t0 = performance.now();
    await sleep(args.seconds * 1000);
    const n = received - start;
    const dt = (performance.now() - t0) / 1000;
    running = false;
    clearInterval(topUp);
    await sleep(50);
    s.close();
    sockets.splice(sockets.indexOf(s), 1);
    return { rate: n / dt, ...latencies.summary() };
  },

  /**
   * Load side: sends datagrams to `port` as fast as the socket takes them for `seconds` (in bursts,
   * yielding to the event loop between them). The receiver's count is the figure.
   */
  async blast(args: { port: number; seconds: number; size?: number }) {
    const s = await bind('127.0.0.1');
    const data = Buffer.alloc(args.size ?? 40, 0x55);
    let sent = 0;
    const end = performance.now() + args.seconds * 1000;
    while (performance.now() < end) {
      for (let i = 0; i < 256; i++) s.send(data, args.port, '127.0.0.1');
      sent += 256;
      await new Promise((r) => setImmediate(r));
    }
    await sleep(50);
    s.close();
    sockets.splice(sockets.indexOf(s), 1);
    return { sent };
  },
};

export async function rawCleanup(): Promise<void> {
  for (const s of sockets.splice(0)) {
    try {
      s.close();
    } catch {
      // already closed
    }
  }
  await endpoint?.close();
}
