/**
 * Section 6, DTLS: our DtlsTransport (lib/dtls) with a CoapEndpoint on top, against node-dtls-client
 * (the DTLS 1.2 client our simulator uses; we did not write it) with TLS_PSK_WITH_AES_128_CCM_8.
 *
 * Server side: `start` binds a CoapEndpoint over a DtlsTransport and another over plain UDP, both
 * answering every GET with 2.05 (as section 1's CoAP request handling), and counts what they serve.
 * Load side: `handshakes` runs full handshakes (cookie exchange included, then close_notify) with many
 * sockets at once; `open` keeps N sessions (or N plain sockets) open; `requests` keeps `window`
 * pre-encoded CON GETs in flight spread over them.
 */
import * as dgram from 'node:dgram';
import { dtls } from 'node-dtls-client';
import { CoapEndpoint } from '../../lib/coap';
import { DtlsTransport } from '../../lib/dtls';
import { UdpTransport } from '../../lib/transport/udp';
import { closedLoop, CpuMeter, sleep } from '../stats';
import type { Handler } from '../rpc';

export const DTLS_SUITE = 'TLS_PSK_WITH_AES_128_CCM_8';
const PSK_KEY = Buffer.from('bench-psk-0123456789');
const IDENTITY_PREFIX = 'bench-';

// ------------------------------------------------------------------------------------------ server side

const cpu = new CpuMeter();
let dtlsTransport: DtlsTransport | undefined;
const endpoints: CoapEndpoint[] = [];
const served = { dtls: 0, plain: 0 };

function answering(transport: DtlsTransport | UdpTransport, kind: 'dtls' | 'plain'): CoapEndpoint {
  const endpoint = new CoapEndpoint(transport, {
    // a few sockets carry the whole window: per-peer and per-address limits off, as in section 1
    maxRequestsPerSecondPerAddress: 0,
    maxConcurrentPerPeer: 1024,
  });
  const ok = Buffer.from('ok');
  endpoint.setRequestHandler(() => {
    served[kind]++;
    return { code: '2.05', payload: ok };
  });
  endpoints.push(endpoint);
  return endpoint;
}

// ------------------------------------------------------------------------------------------ load side

/** node-dtls-client 1.1.1's socket, as much of it as we use (see lib/client/dtls-transport.ts). */
interface DtlsSocket {
  on(event: 'connected' | 'close', listener: () => void): void;
  on(event: 'message', listener: (data: Buffer) => void): void;
  on(event: 'error', listener: (err: Error) => void): void;
  send(data: Buffer): void;
  close(callback?: () => void): void;
  killConnection(err?: Error): void;
  readonly _isClosed: boolean;
}

/** Every node-dtls-client socket not yet closed (ended by `closeAll` and the cleanup). */
const dtlsSockets = new Set<DtlsSocket>();
const plainSockets = new Set<dgram.Socket>();

interface Channel {
  send(data: Buffer): void;
  /** Called for every datagram the channel receives (set by `requests`). */
  onMessage?: () => void;
}
const channels: { dtls: Channel[]; plain: Channel[] } = { dtls: [], plain: [] };

/** One handshake with a new socket; resolves with the socket once `connected`. */
function connect(port: number, identity: string, timeoutMs: number): Promise<DtlsSocket> {
  return new Promise((resolve, reject) => {
    const socket = dtls.createSocket({
      type: 'udp4',
      address: '127.0.0.1',
      port,
      psk: { [identity]: PSK_KEY.toString('latin1') },
      timeout: timeoutMs,
      ciphers: [DTLS_SUITE] as never,
    }) as unknown as DtlsSocket;
    dtlsSockets.add(socket);
    let connected = false;
    socket.on('connected', () => {
      connected = true;
      resolve(socket);
    });
    socket.on('error', (err) => {
      if (!connected) {
        dtlsSockets.delete(socket);
        reject(err);
      }
    });
    socket.on('close', () => {
      dtlsSockets.delete(socket);
      if (!connected) reject(new Error('closed during the handshake'));
    });
  });
}

/** close_notify and close (node-dtls-client throws when closing a socket that never connected). */
function closeSocket(socket: DtlsSocket): Promise<void> {
  return new Promise((resolve) => {
    dtlsSockets.delete(socket);
    if (socket._isClosed) return resolve();
    const timer = setTimeout(() => {
      if (!socket._isClosed) socket.killConnection();
      resolve();
    }, 1000);
    socket.close(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function killAllSockets(): void {
  for (const s of dtlsSockets) {
    try {
      if (!s._isClosed) s.killConnection();
    } catch {
      // already gone
    }
  }
  dtlsSockets.clear();
  for (const s of plainSockets) {
    try {
      s.close();
    } catch {
      // already closed
    }
  }
  plainSockets.clear();
  channels.dtls = [];
  channels.plain = [];
}

/** A CON GET with a 4-byte token and Uri-Path "x" (as section 1's raw CoAP client sends). */
function coapGet(mid: number): Buffer {
  return Buffer.from([0x44, 0x01, mid >> 8, mid & 255, 1, 2, 3, 4, 0xb1, 0x78]);
}

export const dtlsHandlers: Record<string, Handler> = {
  cpuMark: () => cpu.mark(),
  cpuRead: () => cpu.elapsedUs(),

  // ---- server side

  /** Binds the DTLS endpoint and the plain one; resolves with both ports. */
  async start() {
    dtlsTransport = new DtlsTransport({
      address: '127.0.0.1',
      port: 0,
      pskKey: (identity) => (identity.startsWith(IDENTITY_PREFIX) ? PSK_KEY : undefined),
      cipherSuites: [DTLS_SUITE],
      // every benchmark client comes from 127.0.0.1: the per-address limit (default 16) would evict their handshakes
      maxHandshakesPerAddress: 100_000,
      recvBufferSize: 4 << 20,
    });
    const secure = await answering(dtlsTransport, 'dtls').start();
    const plain = await answering(
      new UdpTransport({ address: '127.0.0.1', port: 0, recvBufferSize: 4 << 20 }),
      'plain',
    ).start();
    return { dtlsPort: secure.port, plainPort: plain.port };
  },

  /** The server's counters, CPU time since cpuMark, and what the endpoints served. */
  snapshot: () => ({
    cpuUs: cpu.elapsedUs(),
    served: { ...served },
    handshakes: dtlsTransport?.stats.handshakesCompleted ?? 0,
    failed: dtlsTransport?.stats.handshakesFailed ?? 0,
    refused: dtlsTransport?.stats.handshakesRefused ?? 0,
    retransmissions: dtlsTransport?.stats.retransmissions ?? 0,
    sessions: dtlsTransport?.sessionCount ?? 0,
  }),

  // ---- load side

  /**
   * Full handshakes (ClientHello, HelloVerifyRequest, ClientHello with the cookie, ...Finished) from
   * `concurrency` sockets at once, each closing its session (close_notify) once connected and starting
   * the next with a new socket, for `seconds` after a warm-up. Load CPU per handshake beside the rate.
   */
  async handshakes(args: { port: number; concurrency: number; seconds: number }) {
    const result = await closedLoop({
      window: args.concurrency,
      seconds: args.seconds,
      opTimeoutMs: 10_000,
      op: async (i) => {
        const socket = await connect(args.port, `${IDENTITY_PREFIX}${i}`, 5000);
        await closeSocket(socket);
      },
    });
    // an operation the watchdog gave up on may have left a socket behind
    for (const s of [...dtlsSockets]) await closeSocket(s);
    return result;
  },

  /** Opens `count` DTLS sessions (or plain sockets), `window` handshakes at a time. */
  async open(args: { port: number; count: number; secure: boolean; timeoutMs: number }) {
    const kind = args.secure ? 'dtls' : 'plain';
    const end = performance.now() + args.timeoutMs;
    let started = 0;
    let firstError: string | undefined;
    const opened: Channel[] = [];
    const worker = async () => {
      while (started < args.count && performance.now() < end) {
        started++;
        const channel: Channel = { send: () => undefined };
        if (!args.secure) {
          const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 1 << 20 });
          await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
          plainSockets.add(s);
          channel.send = (data) => s.send(data, args.port, '127.0.0.1');
          s.on('message', () => channel.onMessage?.());
          opened.push(channel);
          continue;
        }
        try {
          const socket = await connect(args.port, `${IDENTITY_PREFIX}s${started}`, 5000);
          channel.send = (data) => socket.send(data);
          socket.on('message', () => channel.onMessage?.());
          opened.push(channel);
        } catch (err) {
          firstError ??= (err as Error).message;
          started--; // try again (bounded by the time limit)
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(16, args.count) }, worker));
    channels[kind] = opened;
    return { opened: opened.length, firstError };
  },

  /**
   * Keeps `window` CON GETs in flight spread evenly over the open channels of one kind (each answer
   * sends the next GET on the same channel, a new message id each), for `seconds` after a warm-up.
   * Load CPU over the measured window beside the rate.
   */
  async requests(args: { secure: boolean; window: number; seconds: number; warmupMs?: number }) {
    const list = channels[args.secure ? 'dtls' : 'plain'];
    if (list.length === 0) throw new Error('no channel open');
    let received = 0;
    let running = true;
    const perChannel = list.map(
      (_, k) => Math.floor(args.window / list.length) + (k < args.window % list.length ? 1 : 0),
    );
    const state = list.map(() => ({ mid: 0, received: 0, last: 0 }));
    const sendOne = (k: number) => list[k].send(coapGet(state[k].mid++ & 0xffff));
    list.forEach((channel, k) => {
      channel.onMessage = () => {
        received++;
        state[k].received++;
        if (running) sendOne(k);
      };
    });
    // a lost datagram would shrink a channel's share of the window: top it up when it got nothing for 200 ms
    const topUp = setInterval(() => {
      state.forEach((s, k) => {
        if (running && s.received === s.last) for (let i = 0; i < perChannel[k]; i++) sendOne(k);
        s.last = s.received;
      });
    }, 200);
    list.forEach((_, k) => {
      for (let i = 0; i < perChannel[k]; i++) sendOne(k);
    });
    await sleep(args.warmupMs ?? 300);
    const start = received;
    const load = new CpuMeter();
    const t0 = performance.now();
    await sleep(args.seconds * 1000);
    const n = received - start;
    const dt = (performance.now() - t0) / 1000;
    const loadCpuUs = load.elapsedUs();
    running = false;
    clearInterval(topUp);
    await sleep(100);
    for (const channel of list) channel.onMessage = undefined;
    return { rate: n / dt, ops: n, seconds: dt, loadCpuUs };
  },

  /** Closes every session (close_notify) and plain socket. */
  async closeAll() {
    for (const s of [...dtlsSockets]) await closeSocket(s);
    killAllSockets();
  },
};

export async function dtlsCleanup(): Promise<void> {
  killAllSockets();
  for (const e of endpoints.splice(0)) await e.close();
  dtlsTransport = undefined;
}
