/**
 * Floods against the LwM2M server, the server in a child process, the flooding sender here (not a mocha test):
 *
 *   node build/bench/floods.js registrations [count=100000]
 *       `count` Registers with distinct endpoint names from one address (127.0.0.1), as fast as they are answered;
 *       the server keeps registrations in a file store: its memory (after GC) and journal growth are reported.
 *   node build/bench/floods.js notifications [seconds=5] [rate=40000]
 *       One device, one observation, NON notifications at `rate` a second for `seconds` (the device stops at the
 *       first RST, as Wakaama does): the server's CPU per notification, and how many reached the application.
 *   node build/bench/floods.js notifications-flow [seconds=5] [rate=40000]
 *       The same into a Node-RED flow (lwm2m-observe -> a counter) in the child process: Node-RED's CPU per
 *       notification (FLOOD_LIMITS=off: the server node with its notification ceiling and flood limit off).
 *   node build/bench/floods.js storm [count=15000]
 *       A registration storm from one address: `count` lean devices on 127.0.0.1 (a socket each) register, 500 in
 *       flight, against the bench's server role twice: with the default per-address request budget (5,000 a
 *       second) and with none. The budget of new registrations per address is off in both (the bench roles run
 *       with NO_FLOOD_LIMITS): this measures what the request budget costs a fleet behind one address.
 *
 * LWM2M_LIB=/path/to/other/dist/lib runs the server of another build (a before/after comparison);
 * FLOOD_LIMITS=off runs this build with every flood limit off (NO_FLOOD_LIMITS).
 */
import { fork } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generate, parse } from 'coap-packet';
import type { ParsedPacket } from 'coap-packet';
import { uintBytes } from './coap-raw';
import { BenchChild } from './rpc';

type Mode = 'registrations' | 'notifications';

interface ServerModule {
  Lwm2mServer: new (options: Record<string, unknown>) => {
    start(): Promise<{ port: number }>;
    stop(): Promise<void>;
    on(event: string, listener: (...args: unknown[]) => void): void;
    observe(endpoint: string, path: string): Promise<unknown>;
    listRegistrations(): Promise<unknown[]>;
  };
  NO_FLOOD_LIMITS?: Record<string, number>;
}

// ---------------------------------------------------------------- the server (child process)

async function serve(mode: Mode): Promise<void> {
  const libRoot = process.env.LWM2M_LIB ?? path.join(__dirname, '..', 'lib');
  const lib = require(path.join(libRoot, 'server', 'lwm2m-server')) as ServerModule;
  const limits = process.env.FLOOD_LIMITS === 'off' ? (lib.NO_FLOOD_LIMITS ?? {}) : {};
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lwm2m-flood-'));
  let stores: Record<string, unknown> = {};
  let journal: { close(): Promise<void> } | undefined;
  if (mode === 'registrations') {
    const file = require(path.join(libRoot, 'store', 'file')) as {
      openJournal(dir: string, name: string): { close(): Promise<void> };
      FileRegistrationStore: new (journal: unknown) => unknown;
      FileObservationStore: new (journal: unknown) => unknown;
    };
    journal = file.openJournal(dir, 'server');
    stores = {
      registrationStore: new file.FileRegistrationStore(journal),
      observationStore: new file.FileObservationStore(journal),
    };
  }
  const server = new lib.Lwm2mServer({ address: '127.0.0.1', port: 0, ...stores, ...limits });
  server.on('error', () => undefined);
  let notifications = 0;
  let ended: string | undefined;
  let endedAt = 0;
  server.on('notification', () => notifications++);
  server.on('observationEnded', (...args: unknown[]) => {
    ended = String(args[1]);
    endedAt = performance.now();
  });
  if (mode === 'notifications')
    server.on('registered', (registration: unknown) => {
      const endpoint = (registration as { endpoint: string }).endpoint;
      server.observe(endpoint, '/3303/0/5700').then(
        () => process.send!({ observed: true }),
        (err: Error) => process.send!({ error: err.message }),
      );
    });
  const { port } = await server.start();
  let cpuMark = process.cpuUsage();
  let notificationsMark = 0;
  let markedAt = 0;
  // The parent's commands; a failed one is reported to it (an async listener's rejection would be lost).
  const answer = async (message: string): Promise<void> => {
    if (message === 'memory') {
      (globalThis as { gc?: () => void }).gc?.();
      const memory = process.memoryUsage();
      const journalBytes = readdirSync(dir).reduce((sum, name) => sum + statSync(path.join(dir, name)).size, 0);
      const registrations = (await server.listRegistrations()).length;
      process.send!({ rss: memory.rss, heap: memory.heapUsed, journalBytes, registrations });
    } else if (message === 'mark') {
      cpuMark = process.cpuUsage();
      notificationsMark = notifications;
      markedAt = performance.now();
      process.send!({ marked: true });
    } else if (message === 'read') {
      const cpu = process.cpuUsage(cpuMark);
      process.send!({
        cpuUs: cpu.user + cpu.system,
        notifications: notifications - notificationsMark,
        ended,
        endedAfterS: ended === undefined ? undefined : (endedAt - markedAt) / 1000,
      });
    } else if (message === 'stop') {
      await server.stop();
      await journal?.close();
      rmSync(dir, { recursive: true, force: true });
      process.exit(0);
    }
  };
  process.on('message', (message: string) => {
    answer(message).catch((err: Error) => process.send!({ error: err.message }));
  });
  process.send!({ port });
}

// ---------------------------------------------------------------- the flooding sender (this process)

function register(mid: number, endpoint: string): Buffer {
  return generate({
    confirmable: true,
    messageId: mid,
    token: uintBytes(mid + 1),
    code: '0.02',
    options: [
      { name: 'Uri-Path', value: Buffer.from('rd') },
      { name: 'Content-Format', value: uintBytes(40) },
      { name: 'Uri-Query', value: Buffer.from(`ep=${endpoint}`) },
      { name: 'Uri-Query', value: Buffer.from('lt=86400') },
      { name: 'Uri-Query', value: Buffer.from('lwm2m=1.1') },
    ],
    payload: Buffer.from('</1/0>,</3/0>,</3303/0>'),
  });
}

interface Child {
  request<T>(message: string): Promise<T>;
  next<T>(): Promise<T>;
}

function startServer(mode: Mode): Promise<{ child: Child; port: number }> {
  const child = fork(__filename, ['serve', mode], { execArgv: ['--expose-gc'] });
  const waiting: Array<(message: unknown) => void> = [];
  child.on('message', (message) => waiting.shift()?.(message));
  const next = <T>() => new Promise<T>((resolve) => waiting.push(resolve as (message: unknown) => void));
  const api: Child = {
    next,
    request<T>(message: string) {
      const answer = next<T>();
      child.send(message);
      return answer;
    },
  };
  return next<{ port: number }>().then(({ port }) => ({ child: api, port }));
}

async function registrations(count: number): Promise<void> {
  const { child, port } = await startServer('registrations');
  const before = await child.request<{ rss: number; heap: number; journalBytes: number }>('memory');
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  const codes = new Map<string, number>();
  const outstanding = new Map<number, { endpoint: string; sentAt: number }>();
  let next = 0;
  let answered = 0;
  let retransmissions = 0;
  // No more than the endpoint handles for one peer at once (maxConcurrentPerPeer, 8): no 5.03 for overload.
  const window = 8;
  const started = performance.now();
  await new Promise<void>((done) => {
    // Requests the per-address request budget dropped get no answer: sent again, as a device would.
    const resend = setInterval(() => {
      const now = performance.now();
      for (const [mid, item] of outstanding)
        if (now - item.sentAt > 1000) {
          item.sentAt = now;
          retransmissions++;
          socket.send(register(mid, item.endpoint), port, '127.0.0.1');
        }
    }, 250);
    const fill = () => {
      while (outstanding.size < window && next < count) {
        const mid = next & 0xffff;
        const endpoint = `flood-${next++}`;
        outstanding.set(mid, { endpoint, sentAt: performance.now() });
        socket.send(register(mid, endpoint), port, '127.0.0.1');
      }
      if (answered === count) {
        clearInterval(resend);
        done();
      }
    };
    socket.on('message', (message) => {
      const packet: ParsedPacket = parse(message);
      if (!packet.ack || !outstanding.has(packet.messageId)) return;
      outstanding.delete(packet.messageId);
      answered++;
      codes.set(packet.code, (codes.get(packet.code) ?? 0) + 1);
      fill();
    });
    fill();
  });
  const seconds = (performance.now() - started) / 1000;
  socket.close();
  const after = await child.request<{ rss: number; heap: number; journalBytes: number; registrations: number }>(
    'memory',
  );
  const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
  console.log(
    `${count} Registers with distinct names from one address in ${seconds.toFixed(1)} s ` +
      `(${retransmissions} retransmitted): answers ${JSON.stringify(Object.fromEntries(codes))}; ` +
      `registrations held ${after.registrations}; RSS +${mb(after.rss - before.rss)} MB, ` +
      `heap +${mb(after.heap - before.heap)} MB, journal +${mb(after.journalBytes - before.journalBytes)} MB`,
  );
  child.request('stop').catch(() => undefined);
}

/** The side being flooded: the core server alone, or Node-RED with a flow. */
interface FloodedServer {
  port: number;
  /** Resolves once the server observes the device's /3303/0/5700. */
  observed(): Promise<void>;
  mark(): Promise<void>;
  read(): Promise<{ cpuUs: number; notifications: number; ended?: string; endedAfterS?: number }>;
  stop(): Promise<void>;
}

async function coreServer(): Promise<FloodedServer> {
  const { child, port } = await startServer('notifications');
  const observed = child.next<{ observed?: boolean; error?: string }>();
  return {
    port,
    async observed() {
      const outcome = await observed;
      if (!outcome.observed) throw new Error(`observe failed: ${outcome.error}`);
    },
    mark: () => child.request('mark'),
    read: () => child.request('read'),
    stop: () => child.request<void>('stop').catch(() => undefined),
  };
}

async function flowServer(): Promise<FloodedServer> {
  const red = await BenchChild.start('nodered', { label: 'node-red' });
  const server = process.env.FLOOD_LIMITS === 'off' ? { notificationRate: '0', floodSeconds: '0' } : {};
  const port = await red.call<number>('start', { observePattern: 'flooder', path: '/3303/0/5700', server }, 60_000);
  let before = { flowMsgs: 0 };
  return {
    port,
    observed: async () => {
      await red.call('waitObserved', { count: 1, timeoutMs: 30_000 }, 40_000);
    },
    async mark() {
      before = await red.call('counts');
      await red.call('cpuMark');
    },
    async read() {
      const cpuUs = await red.call<number>('cpuRead');
      const after = await red.call<{ flowMsgs: number }>('counts');
      return { cpuUs, notifications: after.flowMsgs - before.flowMsgs };
    },
    stop: () => red.stop(),
  };
}

async function notifications(seconds: number, rate: number, target: FloodedServer): Promise<void> {
  const { port } = target;
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  let token: Buffer | undefined;
  let resets = 0;
  let sequence = 2;
  let mid = 1;
  const registered = new Promise<void>((resolve) =>
    socket.on('message', (message) => {
      const packet = parse(message);
      if (packet.reset) resets++;
      else if (packet.ack && packet.code === '2.01') resolve();
      else if (packet.code === '0.01' && packet.options.some((option) => option.name === 'Observe')) {
        token = Buffer.from(packet.token);
        socket.send(
          generate({
            ack: true,
            messageId: packet.messageId,
            token: packet.token,
            code: '2.05',
            options: [
              { name: 'Observe', value: uintBytes(sequence++) },
              { name: 'Content-Format', value: uintBytes(0) },
            ],
            payload: Buffer.from('21.5'),
          }),
          port,
          '127.0.0.1',
        );
      }
    }),
  );
  socket.send(register(mid++, 'flooder'), port, '127.0.0.1');
  await registered;
  await target.observed();
  await target.mark();
  let sent = 0;
  const started = performance.now();
  const end = started + seconds * 1000;
  while (performance.now() < end && resets === 0) {
    // Paced to `rate`: as many as are due by now, then a turn of the event loop (RSTs come in).
    const due = Math.floor(((performance.now() - started) / 1000) * rate);
    for (; sent < due; sent++) {
      mid = (mid + 1) & 0xffff;
      socket.send(
        generate({
          confirmable: false,
          messageId: mid,
          token,
          code: '2.05',
          options: [
            { name: 'Observe', value: uintBytes(sequence++ & 0xffffff) },
            { name: 'Content-Format', value: uintBytes(0) },
          ],
          payload: Buffer.from('21.5'),
        }),
        port,
        '127.0.0.1',
      );
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  const elapsed = (performance.now() - started) / 1000;
  // The server's last datagrams are handled before its CPU is read.
  await new Promise((resolve) => setTimeout(resolve, 200));
  const read = await target.read();
  socket.close();
  console.log(
    `${sent} NON notifications in ${elapsed.toFixed(1)} s (${Math.round(sent / elapsed)}/s) for one observation: ` +
      `server CPU ${(read.cpuUs / sent).toFixed(2)} us per notification (${(read.cpuUs / 1000).toFixed(0)} ms in all, ` +
      `${((read.cpuUs / 1e6 / elapsed) * 100).toFixed(0)}% of a core); ${read.notifications} reached the application; ` +
      (read.ended !== undefined
        ? `observation ended after ${read.endedAfterS?.toFixed(1)} s (${read.ended}); the device got ${resets} RST`
        : 'observation running'),
  );
  await target.stop();
}

/** A registration storm from one address, with the default per-address request budget and with none. */
async function storm(count: number): Promise<void> {
  for (const [label, coap] of [
    ['default request budget (5,000/s per address)', {}],
    ['no request budget', { maxRequestsPerSecondPerAddress: 0 }],
  ] as const) {
    const server = await BenchChild.start('server', { label: 'server' });
    const devices = await BenchChild.start('devices', { label: 'lean devices' });
    try {
      const port = await server.call<number>('start', { coap });
      await server.call('cpuMark');
      const result = await devices.call<{ registered: number; seconds: number }>(
        'leanStart',
        { port, count, prefix: 'storm-', bind: '127.0.0.1', window: 500, timeoutMs: 120_000 },
        180_000,
      );
      const cpuUs = await server.call<number>('cpuRead');
      console.log(
        `${label}: ${result.registered}/${count} registered in ${result.seconds.toFixed(1)} s ` +
          `(${Math.round(result.registered / result.seconds)}/s), server CPU ` +
          `${(cpuUs / Math.max(1, result.registered)).toFixed(0)} us per registration`,
      );
    } finally {
      await devices.stop();
      await server.stop();
    }
  }
}

const [mode, first, second] = process.argv.slice(2);
if (mode === 'serve') void serve(first as Mode);
else if (mode === 'registrations') void registrations(Number(first ?? 100_000));
else if (mode === 'notifications')
  void coreServer().then((target) => notifications(Number(first ?? 5), Number(second ?? 40_000), target));
else if (mode === 'notifications-flow')
  void flowServer().then((target) => notifications(Number(first ?? 5), Number(second ?? 40_000), target));
else if (mode === 'storm') void storm(Number(first ?? 15_000));
else
  console.error(
    'usage: node build/bench/floods.js registrations [count] | notifications [seconds] [rate] | ' +
      'notifications-flow [seconds] [rate] | storm [count]',
  );
