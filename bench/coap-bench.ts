/**
 * Throughput on loopback, server in a child process, client here (not a mocha test):
 *
 *   node build/bench/coap-bench.js [seconds=3] [window=64] [rounds=3]
 *
 * Runs are interleaved `rounds` times and the median is reported (the machine may be shared), plus
 * the server process's CPU time per request, which is less sensitive to scheduling noise.
 *
 * raw-echo      raw dgram client  -> raw dgram echo server            (the ceiling)
 * raw->coap     raw dgram client sending pre-encoded CoAP GETs -> CoapEndpoint server (server-side cost)
 * coap->coap    CoapEndpoint client (request()) -> CoapEndpoint server (both sides)
 * raw->nodecoap raw dgram client sending pre-encoded CoAP GETs -> node-coap server (reference)
 */
import { fork, type ChildProcess } from 'node:child_process';
import * as dgram from 'node:dgram';
import { CoapEndpoint } from '../lib/coap';
import { UdpTransport } from '../lib/transport/udp';

type Mode = 'raw' | 'coap' | 'nodecoap';

let served = 0;
let mark = { cpu: process.cpuUsage(), served: 0 };
process.on('message', (m: string) => {
  if (m === 'start') mark = { cpu: process.cpuUsage(), served };
  else if (m === 'stop') {
    const cpu = process.cpuUsage(mark.cpu);
    process.send!({ cpuUs: cpu.user + cpu.system, served: served - mark.served });
  }
});

async function serve(mode: Mode): Promise<void> {
  if (mode === 'raw') {
    const s = dgram.createSocket('udp4');
    s.on('message', (m, r) => {
      served++;
      s.send(m, r.port, r.address);
    });
    s.bind(0, '127.0.0.1', () => process.send!({ port: s.address().port }));
    process.on('disconnect', () => s.close());
    return;
  }
  if (mode === 'nodecoap') {
    const coap = require('coap');
    const server = coap.createServer({ type: 'udp4' }, (_req: unknown, res: { end(b: Buffer): void }) => {
      served++;
      res.end(Buffer.from('ok'));
    });
    server.listen(0, '127.0.0.1', () => process.send!({ port: server._sock.address().port }));
    process.on('disconnect', () => server.close());
    return;
  }
  const ep = new CoapEndpoint(new UdpTransport({ address: '127.0.0.1', port: 0, recvBufferSize: 4 << 20 }), {
    maxRequestsPerSecondPerAddress: 0,
    maxConcurrentPerPeer: 1024,
  });
  const ok = Buffer.from('ok');
  ep.setRequestHandler(() => {
    served++;
    return { code: '2.05', payload: ok };
  });
  const { port } = await ep.start();
  process.send!({ port });
  process.on('disconnect', () => void ep.close());
}

function startServer(mode: Mode): Promise<{ child: ChildProcess; port: number }> {
  return new Promise((resolve) => {
    const child = fork(__filename, ['serve', mode]);
    child.once('message', (m: { port: number }) => resolve({ child, port: m.port }));
  });
}

function coapGet(mid: number): Buffer {
  // CON GET, token 4 bytes, Uri-Path "x"
  return Buffer.from([0x44, 0x01, mid >> 8, mid & 255, 1, 2, 3, 4, 0xb1, 0x78]);
}

/** Keeps `window` datagrams outstanding; each reply triggers the next send. */
interface Measure {
  start(): void;
  stop(): Promise<{ cpuUs: number; served: number }>;
}

function measureOf(child: ChildProcess): Measure {
  return {
    start: () => child.send('start'),
    stop: () =>
      new Promise((resolve) => {
        child.once('message', (m: { cpuUs: number; served: number }) => resolve(m));
        child.send('stop');
      }),
  };
}

interface Result {
  rate: number;
  cpuUsPerReq: number;
}

async function rawClient(port: number, seconds: number, window: number, coap: boolean, m: Measure): Promise<Result> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  let mid = 0;
  let received = 0;
  let running = true;
  const ping = Buffer.from('ping-ping-ping');
  const sendOne = () => s.send(coap ? coapGet(mid++ & 0xffff) : ping, port, '127.0.0.1');
  s.on('message', () => {
    received++;
    if (running) sendOne();
  });
  // losses (if any) would shrink the window: top it up periodically
  let lastReceived = 0;
  const topUp = setInterval(() => {
    if (received === lastReceived) for (let i = 0; i < window; i++) sendOne();
    lastReceived = received;
  }, 200);
  for (let i = 0; i < window; i++) sendOne();
  await new Promise((r) => setTimeout(r, 300)); // warm-up
  const start = received;
  m.start();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const n = received - start;
  const dt = (performance.now() - t0) / 1000;
  const srv = await m.stop();
  running = false;
  clearInterval(topUp);
  s.close();
  return { rate: n / dt, cpuUsPerReq: srv.cpuUs / srv.served };
}

async function coapClient(port: number, seconds: number, window: number, m: Measure): Promise<Result> {
  const ep = new CoapEndpoint(new UdpTransport({ address: '127.0.0.1', port: 0, recvBufferSize: 4 << 20 }), {
    nstart: window,
    maxQueuedPerPeer: window * 2,
  });
  await ep.start();
  const peer = { address: '127.0.0.1', port };
  let done = 0;
  let running = true;
  const req = { method: 'GET' as const, pathSegments: ['x'] };
  const loop = async () => {
    while (running) {
      await ep.request(peer, req);
      done++;
    }
  };
  const loops = Array.from({ length: window }, loop);
  await new Promise((r) => setTimeout(r, 300));
  const start = done;
  m.start();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const n = done - start;
  const dt = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const srv = await m.stop();
  running = false;
  await Promise.all(loops);
  const st = ep.stats();
  await ep.close();
  if (st.retransmissions > 0) console.log(`   (client retransmissions: ${st.retransmissions})`);
  clientCpu.push((cpu.user + cpu.system) / n);
  return { rate: n / dt, cpuUsPerReq: srv.cpuUs / srv.served };
}

const clientCpu: number[] = [];

function median(xs: number[]): number {
  const a = [...xs].sort((x, y) => x - y);
  return a[a.length >> 1];
}

async function main(): Promise<void> {
  if (process.argv[2] === 'serve') return serve(process.argv[3] as Mode);
  const seconds = Number(process.argv[2] ?? 3);
  const window = Number(process.argv[3] ?? 64);
  const rounds = Number(process.argv[4] ?? 3);
  const results: Record<string, Result[]> = {};
  const run = async (name: string, mode: Mode, client: (port: number, m: Measure) => Promise<Result>) => {
    const { child, port } = await startServer(mode);
    const r = await client(port, measureOf(child));
    (results[name] ??= []).push(r);
    child.disconnect();
    await new Promise((res) => child.once('exit', res));
    console.log(
      `  ${name.padEnd(14)} ${Math.round(r.rate).toString().padStart(8)} req/s   server ${r.cpuUsPerReq.toFixed(2)} us CPU/req`,
    );
  };
  console.log(`loopback, ${seconds}s per run, window ${window}, ${rounds} rounds, node ${process.version}`);
  for (let i = 0; i < rounds; i++) {
    await run('raw-echo', 'raw', (p, m) => rawClient(p, seconds, window, false, m));
    await run('raw->coap', 'coap', (p, m) => rawClient(p, seconds, window, true, m));
    await run('coap->coap', 'coap', (p, m) => coapClient(p, seconds, window, m));
    await run('raw->nodecoap', 'nodecoap', (p, m) => rawClient(p, seconds, window, true, m));
  }
  console.log('median:');
  for (const [name, rs] of Object.entries(results))
    console.log(
      `  ${name.padEnd(14)} ${Math.round(median(rs.map((r) => r.rate)))
        .toString()
        .padStart(8)} req/s   server ${median(rs.map((r) => r.cpuUsPerReq)).toFixed(2)} us CPU/req`,
    );
  const m = (k: string) => median(results[k].map((r) => r.rate));
  const c = (k: string) => median(results[k].map((r) => r.cpuUsPerReq));
  console.log(
    `CoapEndpoint server vs raw echo: ${((100 * m('raw->coap')) / m('raw-echo')).toFixed(0)}% throughput, ` +
      `${((100 * c('raw-echo')) / c('raw->coap')).toFixed(0)}% by server CPU/req; ` +
      `endpoint<->endpoint vs raw echo: ${((100 * m('coap->coap')) / m('raw-echo')).toFixed(0)}%; ` +
      `client CPU ${median(clientCpu).toFixed(2)} us/req`,
  );
}

void main();
