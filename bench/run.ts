/**
 * `npm run bench [-- --quick]`: how fast and how lean the LwM2M server is, side by side with raw UDP
 * and with other Node.js LwM2M servers, in one run on one machine. See bench/README.md.
 *
 * Every figure is taken with the server in one child process pinned to CPU 0 and the load generator
 * (devices, raw clients) in another pinned to CPU 1; this process only steers and prints.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BenchChild, canPin, killAll } from './rpc';
import { fmtInt, fmtMs } from './stats';
import { LEAN_PATH } from './lean-devices';
import { DTLS_SUITE } from './roles/dtls';

const PEERS_DIR = path.resolve(__dirname, '..', '..', 'bench', 'peers');
const SERVER_CPU = 0;
/**
 * Registrations in flight at once against the peers (the same for all three): coap-shepherd loses
 * devices when hundreds register at once (some of its post-registration reads are never answered).
 */
const PEER_REGISTRATION_CONCURRENCY = 100;
const LOAD_CPU = 1;
/** Sessions the DTLS request figure spreads its window over (and plain sockets for its comparison). */
const DTLS_SESSIONS = 16;
/** node-dtls-client handshakes in flight at once (each a new socket, closed once connected). */
const HANDSHAKE_CONCURRENCY = 32;
/** Fleet devices registering at once in section 6 (over DTLS each one is a handshake first). */
const DTLS_REGISTRATION_CONCURRENCY = 100;
/** The PSK every section 6 fleet device shares (identity: its endpoint name). */
const DTLS_FLEET_KEY = '62656e63682d666c6565742d6b6579';

// ------------------------------------------------------------------------------------------ options

interface Options {
  quick: boolean;
  /** Measured seconds per throughput figure. */
  seconds: number;
  /** Devices registering at once (registration) and registered for the core reads. */
  devices: number;
  /** Devices behind the Node-RED flow (reads and notifications). */
  flowDevices: number;
  /** Memory figures at these numbers of devices. */
  memorySizes: number[];
  /** Devices for the side-by-side with the peers. */
  peerDevices: number;
  /** Requests in flight for the c=64 figures. */
  window: number;
  /** DTLS sessions (and plain sockets) the section 6 request window is spread over. */
  dtlsSessions: number;
  /** Fleet devices over DTLS (and as many over plain UDP) for section 6's core reads. */
  dtlsDevices: number;
  /** Only these sections (1-9), all when empty. */
  only: Set<string>;
  /** Pass --cpu-prof to the server processes (profiles in ./bench-profiles). */
  cpuProf: boolean;
  pin: boolean;
}

function parseOptions(argv: string[]): Options {
  const quick = argv.includes('--quick');
  const value = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const o: Options = quick
    ? {
        quick,
        seconds: 2,
        devices: 2000,
        flowDevices: 1000,
        memorySizes: [10_000, 100_000],
        peerDevices: 300,
        window: 64,
        dtlsSessions: DTLS_SESSIONS,
        dtlsDevices: 200,
        only: new Set(),
        cpuProf: false,
        pin: true,
      }
    : {
        quick,
        seconds: 5,
        devices: 10_000,
        flowDevices: 10_000,
        memorySizes: [10_000, 100_000],
        peerDevices: 2000,
        window: 64,
        dtlsSessions: DTLS_SESSIONS,
        dtlsDevices: 1000,
        only: new Set(),
        cpuProf: false,
        pin: true,
      };
  if (value('--seconds')) o.seconds = Number(value('--seconds'));
  if (value('--devices')) o.devices = Number(value('--devices'));
  if (value('--flow-devices')) o.flowDevices = Number(value('--flow-devices'));
  if (value('--peer-devices')) o.peerDevices = Number(value('--peer-devices'));
  if (value('--dtls-sessions')) o.dtlsSessions = Number(value('--dtls-sessions'));
  if (value('--dtls-devices')) o.dtlsDevices = Number(value('--dtls-devices'));
  if (value('--only')) o.only = new Set(value('--only')!.split(','));
  if (argv.includes('--cpu-prof')) o.cpuProf = true;
  if (argv.includes('--no-pin')) o.pin = false;
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(`Usage: npm run bench [-- options]

  --quick              about a minute (fewer devices, 2 s per figure); default: the full run (< 10 min)
  --seconds <n>        measured seconds per throughput figure
  --devices <n>        devices for registration and core reads (full: 10000)
  --flow-devices <n>   devices behind the Node-RED flow (full: 10000)
  --peer-devices <n>   devices for the side-by-side with other servers (full: 2000)
  --dtls-sessions <n>  DTLS sessions the section 6 request window is spread over (default ${DTLS_SESSIONS})
  --dtls-devices <n>   fleet devices over DTLS (and over UDP) for section 6's reads (full: 1000)
  --only <list>        only these sections (1-9), e.g. --only 1,3 (1 is always run: the ratios need it)
  --cpu-prof           write CPU profiles of the server processes to ./bench-profiles
  --no-pin             do not pin server and load generator to a CPU each`);
    process.exit(0);
  }
  if (o.only.size > 0) o.only.add('1');
  return o;
}

// ------------------------------------------------------------------------------------------ results

interface Row {
  section: string;
  label: string;
  value: string;
  /** vs the raw UDP baseline. */
  ratio: string;
  /** Server CPU per operation. */
  cpu: string;
  note: string;
}

interface Target {
  what: string;
  wanted: string;
  got: string;
  met: boolean | undefined;
}

const rows: Row[] = [];
const targets: Target[] = [];
const notes: string[] = [];

function row(section: string, label: string, value: string, ratio = '', cpu = '', note = ''): void {
  rows.push({ section, label, value, ratio, cpu, note });
  console.log(`  · ${label}: ${value}${ratio ? `  (${ratio})` : ''}${note ? `  ${note}` : ''}`);
}

function pct(x: number | undefined, base: number | undefined): string {
  if (x === undefined || base === undefined || !Number.isFinite(x) || !(base > 0)) return 'n/a';
  return `${((100 * x) / base).toFixed(0)}%`;
}

function times(x: number | undefined, base: number | undefined): string {
  if (x === undefined || base === undefined || !Number.isFinite(x) || !(base > 0)) return 'n/a';
  return `${(x / base).toFixed(1)}x`;
}

/** ", 12 errors (why)" for a closed-loop result with errors or timeouts. */
function errNote(r: { errors?: number; timeouts?: number; firstError?: string }): string {
  const n = (r.errors ?? 0) + (r.timeouts ?? 0);
  return n > 0 ? `, ${n} errors (${r.firstError})` : '';
}

function usPerOp(cpuUs: number | undefined, ops: number | undefined): string {
  if (cpuUs === undefined || !ops) return '';
  return `${(cpuUs / ops).toFixed(1)} us`;
}

/** The raw baseline everything is compared with. */
const base: {
  rr1?: number;
  rtt1?: number;
  rtt1p99?: number;
  rr64?: number;
  oneWay?: number;
  /** Section 1's CoAP request handling (raw client, one socket): rate and server CPU per request. */
  coap?: number;
  coapCpu?: number;
} = {};

// ------------------------------------------------------------------------------------------ sections

async function withChildren<T>(
  specs: Array<{ role: string; cpu: number; label: string; server?: boolean }>,
  options: Options,
  body: (children: BenchChild[]) => Promise<T>,
): Promise<T> {
  const children: BenchChild[] = [];
  try {
    for (const s of specs) {
      const execArgv = s.server && options.cpuProf ? ['--cpu-prof', '--cpu-prof-dir=bench-profiles'] : [];
      children.push(await BenchChild.start(s.role, { cpu: options.pin ? s.cpu : undefined, label: s.label, execArgv }));
    }
    return await body(children);
  } finally {
    for (const c of children) await c.stop();
  }
}

async function section1(o: Options): Promise<void> {
  console.log('1. Baseline: raw dgram on loopback');
  await withChildren(
    [
      { role: 'raw', cpu: SERVER_CPU, label: 'raw server', server: true },
      { role: 'raw', cpu: LOAD_CPU, label: 'raw load' },
    ],
    o,
    async ([srv, load]) => {
      const echo = await srv.call<number>('echoStart');
      const c1 = await load.call('pingPong', { port: echo, window: 1, seconds: o.seconds });
      base.rr1 = c1.rate;
      base.rtt1 = c1.p50;
      base.rtt1p99 = c1.p99;
      row(
        '1',
        'raw request/response, c=1',
        `${fmtInt(c1.rate)} /s`,
        'baseline',
        '',
        `RTT p50 ${fmtMs(c1.p50)} ms, p99 ${fmtMs(c1.p99)} ms`,
      );
      await srv.call('cpuMark');
      const e0 = await srv.call<number>('echoCount');
      const c64 = await load.call('pingPong', { port: echo, window: o.window, seconds: o.seconds });
      const cpu = await srv.call<number>('cpuRead');
      const e1 = await srv.call<number>('echoCount');
      base.rr64 = c64.rate;
      row('1', `raw request/response, c=${o.window}`, `${fmtInt(c64.rate)} /s`, 'baseline', usPerOp(cpu, e1 - e0));
      const sink = await srv.call<number>('sinkStart');
      const s0 = await srv.call<number>('sinkCount');
      const t0 = performance.now();
      const blast = await load.call('blast', { port: sink, seconds: o.seconds });
      const s1 = await srv.call<number>('sinkCount');
      const dt = (performance.now() - t0) / 1000;
      base.oneWay = (s1 - s0) / dt;
      row(
        '1',
        'raw one-way datagrams (received)',
        `${fmtInt(base.oneWay)} /s`,
        'baseline',
        '',
        `sent ${fmtInt(blast.sent / o.seconds)} /s`,
      );

      // our CoAP message layer answering GETs, with the same raw client (what test/coap/bench measured)
      const coap = await srv.call<number>('coapStart');
      await srv.call('cpuMark');
      const rc = await load.call('pingPong', { port: coap, window: o.window, seconds: o.seconds, coap: true });
      const ccpu = await srv.call<number>('cpuRead');
      base.coap = rc.rate;
      base.coapCpu = ccpu / (rc.rate * o.seconds);
      row(
        '1',
        `CoAP request handling (CoapEndpoint GET -> 2.05), c=${o.window}`,
        `${fmtInt(rc.rate)} /s`,
        pct(rc.rate, base.rr64),
        usPerOp(ccpu, rc.rate * o.seconds),
        'raw CoAP client',
      );
      targets.push({
        what: 'CoAP request handling vs raw ping-pong',
        wanted: '>= 60%',
        got: pct(rc.rate, base.rr64),
        met: rc.rate / base.rr64! >= 0.6,
      });
    },
  );
}

/**
 * The raw request/response (c=64) and one-way rates measured again just before a section, so that a
 * section's ratios compare with the machine as it is then (this machine may be shared).
 */
async function sectionBaseline(o: Options, section: string): Promise<void> {
  await withChildren(
    [
      { role: 'raw', cpu: SERVER_CPU, label: 'raw server' },
      { role: 'raw', cpu: LOAD_CPU, label: 'raw load' },
    ],
    o,
    async ([srv, load]) => {
      const seconds = Math.min(2, o.seconds);
      const echo = await srv.call<number>('echoStart');
      const c64 = await load.call('pingPong', { port: echo, window: o.window, seconds });
      const sink = await srv.call<number>('sinkStart');
      const s0 = await srv.call<number>('sinkCount');
      const t0 = performance.now();
      await load.call('blast', { port: sink, seconds });
      const oneWay = ((await srv.call<number>('sinkCount')) - s0) / ((performance.now() - t0) / 1000);
      base.rr64 = c64.rate;
      base.oneWay = oneWay;
      row(
        section,
        `raw baseline again: c=${o.window} / one-way`,
        `${fmtInt(c64.rate)} / ${fmtInt(oneWay)} /s`,
        'baseline',
        '',
        'the ratios below use these',
      );
    },
  );
}

/** Registration (2), core reads (3) and LwM2M request handling, with our server and our fleet / lean devices. */
async function sections2and3(o: Options): Promise<void> {
  console.log(`2./3. Registration and core reads: ${fmtInt(o.devices)} devices`);
  await sectionBaseline(o, '2');
  await withChildren([{ role: 'server', cpu: SERVER_CPU, label: 'lwm2m server', server: true }], o, async ([srv]) => {
    const port = await srv.call<number>('start', {});
    // -- 2. our fleet (Lwm2mClient devices) registering at once
    await withChildren([{ role: 'devices', cpu: LOAD_CPU, label: 'fleet' }], o, async ([fleet]) => {
      await srv.call('cpuMark');
      const reg = await fleet.call(
        'fleetStart',
        {
          port,
          count: o.devices,
          prefix: 'sim-',
          lwm2mVersion: '1.1',
          objects: [3303],
          bind: '127.0.1.1-127.0.1.40',
          concurrency: o.devices,
          timeoutMs: 120_000,
        },
        180_000,
      );
      const regCpu = await srv.call<number>('cpuRead');
      row(
        '2',
        `registrations, ${fmtInt(o.devices)} fleet devices at once`,
        `${fmtInt(reg.rate)} /s`,
        pct(reg.rate, base.rr64),
        usPerOp(regCpu, reg.registered),
        `${fmtInt(reg.registered)} in ${reg.seconds.toFixed(2)} s (a cold server process)` +
          (reg.failures ? `, ${reg.failures} retried` : '') +
          (reg.error ? `; ${reg.error}` : ''),
      );
      row(
        '2',
        'registration latency p50 / p99',
        `${fmtMs(reg.p50)} / ${fmtMs(reg.p99)} ms`,
        `${times(reg.p50, base.rtt1)} / ${times(reg.p99, base.rtt1)} raw RTT`,
      );
      await srv.call('cpuMark');
      const up = await fleet.call('fleetUpdates', { window: o.window, seconds: o.seconds });
      const upCpu = await srv.call<number>('cpuRead');
      row(
        '2',
        `registration updates sustained (fleet), c=${o.window}`,
        `${fmtInt(up.ops / up.seconds)} /s`,
        pct(up.ops / up.seconds, base.rr64),
        usPerOp(upCpu, up.ops),
        `p50 ${fmtMs(up.p50)} ms, p99 ${fmtMs(up.p99)} ms` + errNote(up),
      );
      // -- 3a. core reads answered by the fleet devices
      await srv.call('cpuMark');
      const rd = await srv.call(
        'readLoop',
        { prefix: 'sim-', count: o.devices, path: '/3303/0/5700', window: o.window, seconds: o.seconds },
        o.seconds * 1000 + 60_000,
      );
      row(
        '3',
        `core reads (Lwm2mServer.read), fleet devices, c=${o.window}`,
        `${fmtInt(rd.ops / rd.seconds)} /s`,
        pct(rd.ops / rd.seconds, base.rr64),
        usPerOp(rd.cpuUs, rd.ops),
        `p50 ${fmtMs(rd.p50)} ms, p99 ${fmtMs(rd.p99)} ms` + errNote(rd),
      );
      await fleet.call('fleetStop', {}, 60_000);
    });
    // -- 3b. core reads answered by lean devices (the load side costs what a raw echo costs)
    await withChildren([{ role: 'devices', cpu: LOAD_CPU, label: 'lean devices' }], o, async ([lean]) => {
      await srv.call('cpuMark');
      const reg = await lean.call(
        'leanStart',
        { port, count: o.devices, prefix: 'lean-', bind: '127.0.2.1-127.0.2.40', window: 500, timeoutMs: 60_000 },
        120_000,
      );
      const leanRegCpu = await srv.call<number>('cpuRead');
      if (reg.registered < o.devices) notes.push(`lean devices: only ${reg.registered}/${o.devices} registered`);
      row(
        '2',
        `registrations, ${fmtInt(o.devices)} lean devices, 500 in flight`,
        `${fmtInt(reg.registered / reg.seconds)} /s`,
        pct(reg.registered / reg.seconds, base.rr64),
        usPerOp(leanRegCpu, reg.registered),
        `p50 ${fmtMs(reg.p50)} ms, p99 ${fmtMs(reg.p99)} ms (the server's own pace: lean devices cost next to nothing)`,
      );
      targets.push({
        what: 'registrations (lean devices) vs raw ping-pong',
        wanted: '>= 40%',
        got: pct(reg.registered / reg.seconds, base.rr64),
        met: reg.registered / reg.seconds / base.rr64! >= 0.4,
      });
      await srv.call('cpuMark');
      const rd = await srv.call(
        'readLoop',
        { prefix: 'lean-', count: o.devices, path: LEAN_PATH, window: o.window, seconds: o.seconds },
        o.seconds * 1000 + 60_000,
      );
      const rate = rd.ops / rd.seconds;
      row(
        '3',
        `core reads (Lwm2mServer.read), lean devices, c=${o.window}`,
        `${fmtInt(rate)} /s`,
        pct(rate, base.rr64),
        usPerOp(rd.cpuUs, rd.ops),
        `p50 ${fmtMs(rd.p50)} ms, p99 ${fmtMs(rd.p99)} ms; over ${fmtInt(await srv.call('waitRegistered', { count: 0, timeoutMs: 0 }))} registrations` +
          errNote(rd),
      );
      targets.push({
        what: 'core reads vs raw ping-pong',
        wanted: '>= 60%',
        got: pct(rate, base.rr64),
        met: rate / base.rr64! >= 0.6,
      });
      // -- LwM2M request handling: registration Updates from lean devices
      await srv.call('cpuMark');
      const up = await lean.call('leanUpdates', { window: o.window, seconds: o.seconds }, o.seconds * 1000 + 60_000);
      const upCpu = await srv.call<number>('cpuRead');
      const uRate = up.ops / up.seconds;
      row(
        '2',
        `LwM2M request handling (Update -> 2.04), lean devices, c=${o.window}`,
        `${fmtInt(uRate)} /s`,
        pct(uRate, base.rr64),
        usPerOp(upCpu, up.ops),
        `p50 ${fmtMs(up.p50)} ms, p99 ${fmtMs(up.p99)} ms` + errNote(up),
      );
      targets.push({
        what: 'LwM2M request handling (Update) vs raw ping-pong',
        wanted: '>= 60%',
        got: pct(uRate, base.rr64),
        met: uRate / base.rr64! >= 0.6,
      });
    });
  });
}

async function section4(o: Options): Promise<void> {
  console.log(`4. Node-RED flow: ${fmtInt(o.flowDevices)} lean devices`);
  await sectionBaseline(o, '4');
  await withChildren(
    [
      { role: 'nodered', cpu: SERVER_CPU, label: 'node-red', server: true },
      { role: 'devices', cpu: LOAD_CPU, label: 'lean devices' },
    ],
    o,
    async ([red, lean]) => {
      const port = await red.call<number>('start', { observePattern: 'flow-*', path: LEAN_PATH }, 60_000);
      const reg = await lean.call(
        'leanStart',
        { port, count: o.flowDevices, prefix: 'flow-', bind: '127.0.2.1-127.0.2.40', window: 500, timeoutMs: 60_000 },
        120_000,
      );
      // the observe node observes every flow-* device as it registers
      const obs = await red.call('waitObserved', { count: reg.registered, timeoutMs: 180_000 }, 240_000);
      row(
        '4',
        'observations set up by lwm2m-observe (pattern)',
        `${fmtInt(obs.observed)}`,
        '',
        '',
        `all within ${reg.seconds.toFixed(1)} s of registration start + ${obs.seconds.toFixed(1)} s`,
      );
      const rd = await red.call(
        'readLoop',
        { prefix: 'flow-', count: reg.registered, window: o.window, seconds: o.seconds },
        o.seconds * 1000 + 60_000,
      );
      const rate = rd.ops / rd.seconds;
      row(
        '4',
        `flow reads (inject -> lwm2m-read -> counter), c=${o.window}`,
        `${fmtInt(rate)} msgs/s`,
        pct(rate, base.rr64),
        usPerOp(rd.cpuUs, rd.ops),
        `p50 ${fmtMs(rd.p50)} ms, p99 ${fmtMs(rd.p99)} ms` + errNote(rd),
      );
      targets.push({
        what: 'reads through a flow vs raw ping-pong',
        wanted: '>= 40%',
        got: pct(rate, base.rr64),
        met: rate / base.rr64! >= 0.4,
      });
      const c0 = await red.call('counts');
      await red.call('cpuMark');
      const t0 = performance.now();
      const sent = await lean.call('leanNotify', { seconds: o.seconds }, o.seconds * 1000 + 30_000);
      const dt = (performance.now() - t0) / 1000;
      const c1 = await red.call('counts');
      const cpu = await red.call<number>('cpuRead');
      const flowRate = (c1.flowMsgs - c0.flowMsgs) / dt;
      const coreRate = (c1.notifications - c0.notifications) / dt;
      row(
        '4',
        'notifications (NON) through lwm2m-observe into a flow',
        `${fmtInt(flowRate)} msgs/s`,
        pct(flowRate, base.oneWay),
        usPerOp(cpu, c1.flowMsgs - c0.flowMsgs),
        `vs raw one-way; devices sent ${fmtInt(sent.sent / dt)} /s from ${fmtInt(sent.observed)} observed devices; core 'notification' events ${fmtInt(coreRate)} /s`,
      );
    },
  );
}

async function section5(o: Options): Promise<void> {
  console.log('5. Memory per registered device (server on an in-memory transport, --expose-gc)');
  const runs: Array<{ count: number; steadyAfterMs?: number }> = [];
  for (const count of o.memorySizes) {
    runs.push({ count });
    // the quick run skips the steady-state figure (it repeats the registration storm)
    if (!o.quick) runs.push({ count, steadyAfterMs: 2000 });
  }
  for (const run of runs) {
    const child = await BenchChild.start('memory', {
      execArgv: ['--expose-gc', '--max-old-space-size=4096'],
      cpu: o.pin ? SERVER_CPU : undefined,
      label: 'memory',
    });
    try {
      const m = await child.call(
        'measure',
        { count: run.count, window: 2000, steadyAfterMs: run.steadyAfterMs, timeoutMs: 180_000 },
        240_000,
      );
      const when =
        run.steadyAfterMs === undefined ? 'right after the registration storm' : 'steady state (dedup cache expired)';
      row(
        '5',
        `${fmtInt(run.count)} devices + 1 observation each, ${when}`,
        `${fmtInt(m.rssPerDevice)} B RSS / ${fmtInt(m.heapPerDevice)} B heap per device`,
        '',
        '',
        `RSS ${fmtInt(m.rssBefore / 1048576)} -> ${fmtInt(m.rssAfter / 1048576)} MB; ${fmtInt(m.registrations)} registrations, ${fmtInt(m.observations)} observations in ${m.seconds.toFixed(1)} s` +
          (m.failed ? `; ${m.failed} failed (${m.firstError})` : ''),
      );
      if (run.count === 100_000) {
        // issue 18: 1 KB steady, 1.3 KB right after the storm (the dedup cache still holds every Register)
        const limit = run.steadyAfterMs === undefined ? 1331 : 1024;
        targets.push({
          what: `RSS per registered device at 100k, ${run.steadyAfterMs === undefined ? 'after the storm' : 'steady state'}`,
          wanted: `<= ${fmtInt(limit)} B`,
          got: `${fmtInt(m.rssPerDevice)} B`,
          met: m.rssPerDevice <= limit,
        });
      }
    } finally {
      await child.stop();
    }
  }
}

/**
 * One million registered devices in one server process (issue 18): the memory section's set-up (in-memory transport,
 * lean devices in the same process, one observation each) at 1M, then reads at random devices. The quick run does
 * 200k. Its own process with an 8 GB heap limit (the default would stop it near 4 GB).
 */
async function section9(o: Options): Promise<void> {
  const count = o.quick ? 200_000 : 1_000_000;
  console.log(`9. ${fmtInt(count)} devices in one server process`);
  // Right after the storm (with reads), then (full run) steady state: the same with a 2 s CoAP exchange lifetime, so
  // that the dedup cache of the storm has expired when memory is measured.
  for (const steadyAfterMs of o.quick ? [undefined] : [undefined, 2000]) {
    const child = await BenchChild.start('memory', {
      execArgv: ['--expose-gc', '--max-old-space-size=8192'],
      cpu: o.pin ? SERVER_CPU : undefined,
      label: 'memory',
    });
    try {
      const afterStorm = steadyAfterMs === undefined;
      const m = await child.call(
        'measure',
        {
          count,
          window: 2000,
          steadyAfterMs,
          timeoutMs: 600_000,
          readSeconds: afterStorm ? o.seconds : undefined,
          readWindow: o.window,
        },
        720_000,
      );
      const lossless = m.failed === 0 && m.registrations === count && m.observations === count;
      if (afterStorm) {
        row(
          '9',
          `${fmtInt(count)} devices registered, 1 observation each (2,000 in flight)`,
          `${m.seconds.toFixed(1)} s`,
          '',
          '',
          `${fmtInt(count / m.seconds)} registrations+observations/s; ${fmtInt(m.registrations)} registrations, ` +
            `${fmtInt(m.observations)} observations` +
            (m.failed ? `; ${m.failed} failed (${m.firstError})` : '; none lost'),
        );
      }
      row(
        '9',
        `memory at ${fmtInt(count)} devices, ${afterStorm ? 'right after the storm' : 'steady state (dedup cache expired)'}`,
        `${fmtInt(m.rssAfter / 1048576)} MB RSS / ${fmtInt(m.heapAfter / 1048576)} MB heap`,
        '',
        '',
        `growth ${fmtInt(m.rssPerDevice)} B RSS / ${fmtInt(m.heapPerDevice)} B heap per device (RSS before ${fmtInt(m.rssBefore / 1048576)} MB: lean devices, Node)`,
      );
      if (afterStorm) {
        row(
          '9',
          `reads at ${fmtInt(count)} devices (random device, c=${o.window})`,
          `${fmtInt(m.readsPerSecond)} /s`,
          '',
          '',
          `p50 ${fmtMs(m.readP50)} ms, p99 ${fmtMs(m.readP99)} ms over ${fmtInt(m.reads)} reads` +
            (m.readErrors ? `, ${m.readErrors} failed` : ''),
        );
      }
      if (count === 1_000_000) {
        targets.push({
          what: `1,000,000 registered devices in one process, RSS ${afterStorm ? 'after the storm' : 'steady state'}`,
          wanted: '< 1.5 GB',
          got: `${(m.rssAfter / 1073741824).toFixed(2)} GB`,
          met: lossless && m.rssAfter < 1.5 * 1073741824,
        });
      }
    } finally {
      await child.stop();
    }
  }
}

/** "server core 45% busy, load core 98% busy" and, when the load side is the bottleneck, says so. */
function busyNote(
  serverCpuUs: number,
  loadCpuUs: number,
  seconds: number,
  client = 'node-dtls-client sets',
): { text: string; clientBound: boolean } {
  const server = serverCpuUs / (seconds * 1e6);
  const load = loadCpuUs / (seconds * 1e6);
  const clientBound = load >= 0.85 && server < 0.85;
  return {
    text:
      `server core ${(100 * server).toFixed(0)}% busy, load core ${(100 * load).toFixed(0)}%` +
      (clientBound
        ? ` (client-bound: ${client} the pace)`
        : load < 0.85 && server < 0.85
          ? ' (neither saturated: latency-bound or a shared machine)'
          : ''),
    clientBound,
  };
}

interface DtlsSnapshot {
  cpuUs: number;
  served: { dtls: number; plain: number };
  handshakes: number;
  failed: number;
  refused: number;
  retransmissions: number;
  sessions: number;
}

async function section6(o: Options): Promise<void> {
  console.log(`6. DTLS 1.2 PSK (${DTLS_SUITE}): our DtlsTransport + CoapEndpoint, node-dtls-client devices`);
  await sectionBaseline(o, '6');
  await withChildren(
    [
      { role: 'dtls', cpu: SERVER_CPU, label: 'dtls server', server: true },
      { role: 'dtls', cpu: LOAD_CPU, label: 'dtls load' },
    ],
    o,
    async ([srv, load]) => {
      const { dtlsPort, plainPort } = await srv.call<{ dtlsPort: number; plainPort: number }>('start');
      const snapshot = () => srv.call<DtlsSnapshot>('snapshot');

      // -- handshakes: server CPU and handshakes counted by the server over the same window
      await srv.call('cpuMark');
      const h0 = await snapshot();
      let t0 = performance.now();
      const hs = await load.call(
        'handshakes',
        { port: dtlsPort, concurrency: HANDSHAKE_CONCURRENCY, seconds: o.seconds },
        o.seconds * 1000 + 60_000,
      );
      const h1 = await snapshot();
      let window = (performance.now() - t0) / 1000;
      const hsCount = h1.handshakes - h0.handshakes;
      const hsRate = hs.ops / hs.seconds;
      const hsBusy = busyNote(h1.cpuUs, (hs.cpuUs / hs.seconds) * window, window);
      row(
        '6',
        `DTLS PSK handshakes (cookie exchange, then close_notify), ${HANDSHAKE_CONCURRENCY} at once`,
        `${fmtInt(hsRate)} /s`,
        '',
        usPerOp(h1.cpuUs, hsCount),
        `p50 ${fmtMs(hs.p50)} ms, p99 ${fmtMs(hs.p99)} ms; load ${usPerOp(hs.cpuUs, hs.ops)}/handshake; ${hsBusy.text}` +
          (hsBusy.clientBound ? `; server CPU alone would allow ${fmtInt((1e6 * hsCount) / h1.cpuUs)} /s` : '') +
          (h1.failed - h0.failed + h1.refused - h0.refused > 0
            ? `; server: ${h1.failed - h0.failed} failed, ${h1.refused - h0.refused} refused`
            : '') +
          errNote(hs),
      );

      // -- requests: the same load shape over plain sockets and over DTLS sessions
      const plainOpen = await load.call('open', {
        port: plainPort,
        count: o.dtlsSessions,
        secure: false,
        timeoutMs: 10_000,
      });
      const dtlsOpen = await load.call(
        'open',
        { port: dtlsPort, count: o.dtlsSessions, secure: true, timeoutMs: 30_000 },
        60_000,
      );
      if (dtlsOpen.opened < o.dtlsSessions)
        notes.push(`DTLS: only ${dtlsOpen.opened}/${o.dtlsSessions} sessions opened (${dtlsOpen.firstError})`);
      const measure = async (secure: boolean, requestWindow = o.window, seconds = o.seconds) => {
        await srv.call('cpuMark');
        const before = await snapshot();
        t0 = performance.now();
        const r = await load.call('requests', { secure, window: requestWindow, seconds }, seconds * 1000 + 30_000);
        const after = await snapshot();
        window = (performance.now() - t0) / 1000;
        const kind = secure ? 'dtls' : 'plain';
        const servedCount = after.served[kind] - before.served[kind];
        return {
          rate: r.rate as number,
          cpuPerReq: after.cpuUs / Math.max(1, servedCount),
          loadPerReq: (r.loadCpuUs as number) / Math.max(1, r.ops as number),
          busy: busyNote(after.cpuUs, (r.loadCpuUs / r.seconds) * window, window),
        };
      };
      const plain = await measure(false);
      const secure = await measure(true);
      row(
        '6',
        `CoAP GET -> 2.05 over plain UDP, ${plainOpen.opened} sockets, c=${o.window}`,
        `${fmtInt(plain.rate)} /s`,
        pct(plain.rate, base.rr64),
        `${plain.cpuPerReq.toFixed(1)} us`,
        `the comparison for DTLS (same load shape); section 1 (one socket): ${fmtInt(base.coap)} /s, ${base.coapCpu?.toFixed(1) ?? 'n/a'} us; load ${plain.loadPerReq.toFixed(1)} us/request; ${plain.busy.text}`,
      );
      row(
        '6',
        `CoAP GET -> 2.05 over DTLS (CCM_8), ${dtlsOpen.opened} sessions, c=${o.window}`,
        `${fmtInt(secure.rate)} /s`,
        pct(secure.rate, base.rr64),
        `${secure.cpuPerReq.toFixed(1)} us`,
        `${pct(secure.rate, plain.rate)} of plain; load ${secure.loadPerReq.toFixed(1)} us/request; ${secure.busy.text}`,
      );
      row(
        '6',
        'DTLS / plain, server CPU per request',
        `${times(secure.cpuPerReq, plain.cpuPerReq)} (+${(secure.cpuPerReq - plain.cpuPerReq).toFixed(1)} us)`,
        '',
        '',
        `what DTLS adds per request: record parsing, AES-128-CCM_8 decrypt + encrypt (reused per-key AES objects), replay window; rate ${pct(secure.rate, plain.rate)} of plain` +
          (secure.busy.clientBound
            ? " (the rate is bound by node-dtls-client, the CPU figure is the server's own)"
            : ''),
      );
      const sameRate = await plainAtRate(secure.rate, async (requestWindow) => {
        const r = await measure(false, requestWindow, Math.min(o.seconds, 3));
        return { rate: r.rate, cpu: r.cpuPerReq };
      });
      sameRateRow('request', { rate: secure.rate, cpu: secure.cpuPerReq }, sameRate);
      await load.call('closeAll', {}, 30_000);
    },
  );
  await dtlsCoreReads(o);
  await firmwareTransfer(o);
}

interface FirmwareFigures {
  ok: boolean;
  method: string;
  firmwareVersion?: string;
  downloadSeconds: number;
  downloadCpuUs: number;
  totalSeconds: number;
  totalCpuUs: number;
}

/**
 * Firmware delivery to one simulated device (an Lwm2mClient with object 5, load process) by a FirmwareJob in
 * the server process: push (Block1 writes of /5/0/0, the server waits for each 2.31 Continue) and pull (the
 * device GETs /fw/<id> from the server, Block2). Rate and server CPU over the download (State 1 -> 2).
 */
async function firmwareTransfer(o: Options): Promise<void> {
  const size = o.quick ? 256 * 1024 : 1024 * 1024;
  const sizeText = size >= 1048576 ? `${size / 1048576} MB` : `${size / 1024} KB`;
  await withChildren(
    [
      { role: 'server', cpu: SERVER_CPU, label: 'firmware server', server: true },
      { role: 'devices', cpu: LOAD_CPU, label: 'firmware device' },
    ],
    o,
    async ([srv, load]) => {
      const port = await srv.call<number>('start', {});
      await load.call('firmwareStart', { port, endpoint: 'fw-bench' }, 30_000);
      await srv.call('waitRegistered', { count: 1, timeoutMs: 10_000 }, 20_000);
      const versions = { push: '2.0.0', pull: '3.0.0' } as const;
      for (const method of ['push', 'pull'] as const) {
        const r = await srv.call<FirmwareFigures>(
          'firmware',
          { endpoint: 'fw-bench', method, size, version: versions[method] },
          300_000,
        );
        const kb = size / 1024;
        row(
          '6',
          `firmware ${method} of a ${sizeText} image to one device (${method === 'push' ? 'Block1 write of /5/0/0' : 'device GETs /fw/..., Block2'})`,
          `${fmtInt(kb / r.downloadSeconds)} KB/s`,
          '',
          `${(r.downloadCpuUs / kb).toFixed(0)} us/KB`,
          `download ${r.downloadSeconds.toFixed(2)} s (State 1 -> 2), whole job ${r.totalSeconds.toFixed(2)} s incl. update and reboot, ` +
            `server CPU ${fmtMs(r.totalCpuUs / 1000)} ms in all; ${r.ok && r.firmwareVersion === versions[method] ? `device now runs ${r.firmwareVersion}` : `FAILED (${r.firmwareVersion})`}`,
        );
      }
      await load.call('firmwareStop', {}, 10_000);
    },
  );
}

/**
 * Core reads (`Lwm2mServer.read`) answered by fleet devices (full Lwm2mClients) over DTLS (PSK, the
 * server's own DTLS listener, credentials in its security store) and, for comparison, as many over
 * plain UDP, against the same server process.
 */
async function dtlsCoreReads(o: Options): Promise<void> {
  const count = o.dtlsDevices;
  await withChildren([{ role: 'server', cpu: SERVER_CPU, label: 'lwm2m server', server: true }], o, async ([srv]) => {
    const { port, securePort } = await srv.call<{ port: number; securePort: number }>('start', {
      dtls: { prefix: 'dsim-', count, keyHex: DTLS_FLEET_KEY },
    });
    interface Reads {
      rate: number;
      cpu: number;
      cpuUs: number;
      ops: number;
      text: string;
    }
    const results: { plain?: Reads; secure?: Reads; sameRate?: RateAt } = {};
    // DTLS first: the plain fleet is then measured at c=64 and again at the window whose rate comes closest to the
    // DTLS one (node-dtls-client holds that rate down, and the server's CPU per read grows as its rate falls).
    for (const secure of [true, false]) {
      const prefix = secure ? 'dsim-' : 'psim-';
      await withChildren(
        [{ role: 'devices', cpu: LOAD_CPU, label: secure ? 'DTLS fleet' : 'fleet' }],
        o,
        async ([fleet]) => {
          await srv.call('cpuMark');
          const reg = await fleet.call(
            'fleetStart',
            {
              port: secure ? securePort : port,
              count,
              prefix,
              lwm2mVersion: '1.1',
              objects: [3303],
              bind: '127.0.1.1-127.0.1.40',
              concurrency: DTLS_REGISTRATION_CONCURRENCY,
              timeoutMs: 60_000,
              pskHex: secure ? DTLS_FLEET_KEY : undefined,
            },
            120_000,
          );
          const regCpu = await srv.call<number>('cpuRead');
          const readLoop = async (window: number, seconds: number) => {
            await fleet.call('cpuMark');
            const t0 = performance.now();
            const rd = await srv.call(
              'readLoop',
              { prefix, count, path: '/3303/0/5700', window, seconds },
              seconds * 1000 + 60_000,
            );
            const wall = (performance.now() - t0) / 1000;
            const loadCpu = await fleet.call<number>('cpuRead');
            return { rd, wall, loadCpu };
          };
          const { rd, wall, loadCpu } = await readLoop(o.window, o.seconds);
          // the load side's CPU over the whole call (warm-up and tail included), as a share of its core
          const busy = busyNote((rd.cpuUs / rd.seconds) * wall, loadCpu, wall, 'the devices set');
          const registered =
            `${fmtInt(reg.registered)} registered (${DTLS_REGISTRATION_CONCURRENCY} at once${secure ? ', handshake first' : ''}) ` +
            `at ${fmtInt(reg.rate)} /s, ${usPerOp(regCpu, reg.registered)} server CPU each` +
            (reg.error ? ` (${reg.error})` : '');
          const reads: Reads = {
            rate: rd.ops / rd.seconds,
            cpu: rd.cpuUs / Math.max(1, rd.ops),
            cpuUs: rd.cpuUs,
            ops: rd.ops,
            text: `p50 ${fmtMs(rd.p50)} ms, p99 ${fmtMs(rd.p99)} ms; ${busy.text}; ${registered}` + errNote(rd),
          };
          if (secure) results.secure = reads;
          else {
            results.plain = reads;
            if (results.secure !== undefined) {
              results.sameRate = await plainAtRate(results.secure.rate, async (window) => {
                const { rd: r } = await readLoop(window, Math.min(o.seconds, 3));
                return { rate: r.ops / r.seconds, cpu: r.cpuUs / Math.max(1, r.ops) };
              });
            }
          }
          await fleet.call('fleetStop', {}, 60_000);
        },
      );
    }
    const { plain, secure, sameRate } = results;
    for (const [label, reads] of [
      ['plain UDP', plain],
      ['DTLS (PSK)', secure],
    ] as const) {
      if (reads === undefined) continue;
      row(
        '6',
        `core reads, ${fmtInt(count)} fleet devices over ${label}, c=${o.window}`,
        `${fmtInt(reads.rate)} /s`,
        pct(reads.rate, base.rr64),
        usPerOp(reads.cpuUs, reads.ops),
        (reads === secure && plain !== undefined
          ? `${pct(reads.rate, plain.rate)} of plain, server CPU ${times(reads.cpu, plain.cpu)} plain (+${(reads.cpu - plain.cpu).toFixed(1)} us); `
          : '') + reads.text,
      );
    }
    if (secure !== undefined) sameRateRow('read', secure, sameRate);
  });
}

/** A plain run's rate and server CPU per operation at a given window. */
interface RateAt {
  window: number;
  rate: number;
  cpu: number;
}

/**
 * The server's CPU per request grows as its rate falls (fewer datagrams per turn of the event loop share its fixed
 * costs), and node-dtls-client holds the DTLS rate well below plain's: plain is measured again at windows 1, 2, 4 ...
 * until its rate passes `target`, and the run whose rate comes closest is the comparison at the same load.
 */
async function plainAtRate(
  target: number,
  measureAt: (window: number) => Promise<{ rate: number; cpu: number }>,
): Promise<RateAt | undefined> {
  let best: RateAt | undefined;
  for (const window of [1, 2, 4, 8, 16, 32]) {
    const { rate, cpu } = await measureAt(window);
    if (best === undefined || Math.abs(rate - target) < Math.abs(best.rate - target)) best = { window, rate, cpu };
    if (rate > target) break;
  }
  return best;
}

/** The "DTLS / plain at the same rate" row of section 6 and its issue-18 target (at most 1.5x). */
function sameRateRow(what: 'request' | 'read', secure: { rate: number; cpu: number }, plain: RateAt | undefined): void {
  if (plain === undefined) return;
  row(
    '6',
    `${what === 'read' ? 'core reads, ' : ''}DTLS / plain at the same rate, server CPU per ${what}`,
    `${times(secure.cpu, plain.cpu)} (+${(secure.cpu - plain.cpu).toFixed(1)} us)`,
    '',
    '',
    `plain ${what === 'read' ? 'fleet ' : ''}with c=${plain.window}: ${fmtInt(plain.rate)} /s at ${plain.cpu.toFixed(1)} us; DTLS ${fmtInt(secure.rate)} /s`,
  );
  targets.push({
    what: `a ${what} over DTLS vs plain at the same rate, server CPU`,
    wanted: '<= 1.5x',
    got: times(secure.cpu, plain.cpu),
    met: secure.cpu / plain.cpu <= 1.5,
  });
}

/** Installs bench/peers on first run; returns why a peer cannot run, or undefined. */
function ensurePeers(): Map<string, string | undefined> {
  const reasons = new Map<string, string | undefined>();
  const names = ['lwm2m-node-lib', 'coap-shepherd'];
  const missing = () => names.filter((n) => !fs.existsSync(path.join(PEERS_DIR, 'node_modules', n, 'package.json')));
  if (missing().length > 0) {
    console.log(`   installing the peers in ${path.relative(process.cwd(), PEERS_DIR)} (first run)...`);
    try {
      execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], {
        cwd: PEERS_DIR,
        stdio: ['ignore', 'ignore', 'pipe'],
        timeout: 300_000,
      });
    } catch (err) {
      const why = String((err as { stderr?: Buffer }).stderr ?? (err as Error).message)
        .split('\n')
        .filter(Boolean)
        .slice(-2)
        .join(' ');
      for (const n of missing()) reasons.set(n, `npm install failed: ${why}`);
    }
  }
  for (const n of names) if (!reasons.has(n)) reasons.set(n, undefined);
  return reasons;
}

/**
 * 8. Stores: the same registration storm (lean devices, 500 in flight) and core reads with the server on
 * its memory store, on the file journal (every registration synced to disk before its 2.01) and on a real
 * redis-server (started here on a free port; skipped when it is not installed), with its memory after.
 */
async function section8(o: Options): Promise<void> {
  console.log(`8. Stores: memory, file, Redis: ${fmtInt(o.devices)} devices`);
  await sectionBaseline(o, '8');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lwm2m-bench-store-'));
  let redis: ChildProcess | undefined;
  try {
    const kinds: Array<{ label: string; store?: Record<string, unknown> }> = [
      { label: 'memory' },
      { label: 'file', store: { kind: 'file', dir } },
    ];
    if (spawnSync('redis-server', ['--version']).status === 0) {
      const port = await freeTcpPort();
      redis = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        {
          stdio: 'ignore',
        },
      );
      await waitForTcp(port, 10_000);
      kinds.push({ label: 'redis', store: { kind: 'redis', url: `redis://127.0.0.1:${port}`, prefix: 'bench:' } });
    } else notes.push('section 8: redis-server not installed, the Redis rows are missing');
    for (const kind of kinds) {
      await withChildren(
        [
          { role: 'server', cpu: SERVER_CPU, label: `server (${kind.label} store)`, server: true },
          { role: 'devices', cpu: LOAD_CPU, label: 'lean devices' },
        ],
        o,
        async ([srv, lean]) => {
          const port = await srv.call<number>('start', { ...(kind.store ? { store: kind.store } : {}) });
          await srv.call('cpuMark');
          const reg = await lean.call(
            'leanStart',
            { port, count: o.devices, prefix: 'lean-', bind: '127.0.2.1-127.0.2.40', window: 500, timeoutMs: 60_000 },
            120_000,
          );
          const regCpu = await srv.call<number>('cpuRead');
          row(
            '8',
            `registrations, ${kind.label} store, ${fmtInt(o.devices)} lean devices, 500 in flight`,
            `${fmtInt(reg.registered / reg.seconds)} /s`,
            pct(reg.registered / reg.seconds, base.rr64),
            usPerOp(regCpu, reg.registered),
            `p50 ${fmtMs(reg.p50)} ms, p99 ${fmtMs(reg.p99)} ms` +
              (reg.registered < o.devices ? `; only ${reg.registered} registered` : ''),
          );
          const rd = await srv.call(
            'readLoop',
            { prefix: 'lean-', count: o.devices, path: LEAN_PATH, window: o.window, seconds: o.seconds },
            o.seconds * 1000 + 60_000,
          );
          row(
            '8',
            `core reads, ${kind.label} store, c=${o.window}`,
            `${fmtInt(rd.ops / rd.seconds)} /s`,
            pct(rd.ops / rd.seconds, base.rr64),
            usPerOp(rd.cpuUs, rd.ops),
            `p50 ${fmtMs(rd.p50)} ms, p99 ${fmtMs(rd.p99)} ms` + errNote(rd),
          );
          const memory = await srv.call<NodeJS.MemoryUsage>('memory');
          row(
            '8',
            `server memory, ${kind.label} store`,
            `${fmtInt(memory.rss / 1024 / 1024)} MB RSS`,
            '',
            '',
            `heap ${fmtInt(memory.heapUsed / 1024 / 1024)} MB`,
          );
          await srv.call('stopServer', {}, 30_000);
        },
      );
    }
  } finally {
    redis?.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function freeTcpPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitForTcp(port: number, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const connected = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (connected) return;
    if (Date.now() > end) throw new Error(`nothing listens on ${port}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function section7(o: Options): Promise<void> {
  console.log(
    `7. Peers side by side: ${fmtInt(o.peerDevices)} fleet devices (LwM2M 1.0, ${PEER_REGISTRATION_CONCURRENCY} registering at a time), reads of /3/0/9`,
  );
  const reasons = ensurePeers();
  await sectionBaseline(o, '7');
  const results = new Map<string, { regRate: number; readRate: number; regCpu: number; readCpu: number } | undefined>();
  for (const kind of ['ours', 'lwm2m-node-lib', 'coap-shepherd']) {
    const why = reasons.get(kind);
    if (why) {
      row('7', `${kind}`, 'n/a', '', '', why);
      results.set(kind, undefined);
      continue;
    }
    try {
      await withChildren(
        [
          { role: 'peer', cpu: SERVER_CPU, label: kind, server: true },
          { role: 'devices', cpu: LOAD_CPU, label: 'fleet' },
        ],
        o,
        async ([srv, fleet]) => {
          const port = await srv.call<number>('start', { kind }, 60_000);
          await srv.call('cpuMark');
          // coap-shepherd understands LwM2M 1.0 registrations only (a `ver=` link breaks it), so every
          // server gets 1.0 devices with the mandatory objects only, and reads /3/0/9 (battery level)
          const reg = await fleet.call(
            'fleetStart',
            {
              port,
              count: o.peerDevices,
              prefix: 'peer-',
              lwm2mVersion: '1.0',
              objects: [],
              bind: '127.0.1.1-127.0.1.40',
              concurrency: PEER_REGISTRATION_CONCURRENCY,
              timeoutMs: 120_000,
            },
            180_000,
          );
          const ready = await srv.call('waitReady', { count: reg.registered, timeoutMs: 120_000 }, 180_000);
          const regCpu = await srv.call<number>('cpuRead');
          const rd = await srv.call(
            'readLoop',
            {
              prefix: 'peer-',
              count: o.peerDevices,
              path: '/3/0/9',
              window: o.window,
              seconds: o.seconds,
              readyOnly: true,
            },
            o.seconds * 1000 + 120_000,
          );
          const readRate = rd.ops / rd.seconds;
          results.set(kind, {
            regRate: reg.rate,
            readRate,
            regCpu: regCpu / reg.registered,
            readCpu: rd.cpuUs / Math.max(1, rd.ops),
          });
          row(
            '7',
            `${kind}: registrations`,
            `${fmtInt(reg.rate)} /s`,
            pct(reg.rate, base.rr64),
            usPerOp(regCpu, reg.registered),
            `p50 ${fmtMs(reg.p50)} ms, p99 ${fmtMs(reg.p99)} ms; ${fmtInt(reg.registered)} registered` +
              (ready.ready < reg.registered ? `, only ${ready.ready} ready` : '') +
              (kind === 'coap-shepherd' ? `; online (objects read) ${ready.seconds.toFixed(1)} s later` : '') +
              (reg.error ? `; ${reg.error}` : ''),
          );
          row(
            '7',
            `${kind}: reads, c=${o.window}`,
            `${fmtInt(readRate)} /s`,
            pct(readRate, base.rr64),
            usPerOp(rd.cpuUs, rd.ops),
            `p50 ${fmtMs(rd.p50)} ms, p99 ${fmtMs(rd.p99)} ms` + errNote(rd),
          );
        },
      );
    } catch (err) {
      row('7', `${kind}`, 'failed', '', '', (err as Error).message.split('\n')[0]);
      results.set(kind, undefined);
    }
  }
  const ours = results.get('ours');
  for (const peer of ['lwm2m-node-lib', 'coap-shepherd']) {
    const theirs = results.get(peer);
    if (!ours || !theirs) {
      targets.push({ what: `ours vs ${peer}`, wanted: '>= 5x', got: 'n/a', met: undefined });
      continue;
    }
    const reg = ours.regRate / theirs.regRate;
    const read = ours.readRate / theirs.readRate;
    row(
      '7',
      `ours / ${peer}`,
      `registrations ${reg.toFixed(1)}x, reads ${read.toFixed(1)}x`,
      '',
      `${(theirs.regCpu / ours.regCpu).toFixed(1)}x / ${(theirs.readCpu / ours.readCpu).toFixed(1)}x less`,
      'throughput ratios; server CPU per registration / per read compared in the CPU column',
    );
    targets.push({ what: `registrations: ours vs ${peer}`, wanted: '>= 5x', got: `${reg.toFixed(1)}x`, met: reg >= 5 });
    targets.push({ what: `reads: ours vs ${peer}`, wanted: '>= 5x', got: `${read.toFixed(1)}x`, met: read >= 5 });
  }
}

// ------------------------------------------------------------------------------------------ output

function printTable(o: Options, header: string[]): void {
  const cols: Array<keyof Row> = ['section', 'label', 'value', 'ratio', 'cpu', 'note'];
  const titles: Record<keyof Row, string> = {
    section: '#',
    label: 'figure',
    value: 'value',
    ratio: 'vs raw UDP',
    cpu: 'server CPU/op',
    note: 'details',
  };
  const all = [titles, ...rows];
  const width = (c: keyof Row) => Math.max(...all.map((r) => r[c].length));
  const line = (r: Row) => cols.map((c) => (c === 'note' ? r[c] : r[c].padEnd(width(c)))).join(' | ');
  console.log('');
  for (const h of header) console.log(h);
  console.log('');
  console.log(line(titles));
  console.log(cols.map((c) => '-'.repeat(c === 'note' ? 7 : width(c))).join('-|-'));
  for (const r of rows) console.log(line(r));
  console.log('');
  console.log('Targets (same run):');
  for (const t of targets) {
    const mark = t.met === undefined ? 'n/a ' : t.met ? 'met ' : 'MISS';
    console.log(`  [${mark}] ${t.what}: ${t.got} (wanted ${t.wanted})`);
  }
  for (const n of notes) console.log(`  note: ${n}`);
  void o;
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  const pinned = o.pin && canPin();
  if (!pinned) o.pin = false;
  const cpus = os.cpus();
  const header = [
    `LwM2M server benchmark (${o.quick ? 'quick' : 'full'} run), ${new Date().toISOString()}`,
    `machine: ${cpus.length} cores, ${cpus[0]?.model ?? 'unknown CPU'}, ${fmtInt(os.totalmem() / 1048576)} MB RAM, ${os.platform()} ${os.release()}; Node ${process.version}`,
    `processes: server in one child${pinned ? ` pinned to CPU ${SERVER_CPU}` : ''}, load generator (devices, raw clients) in another${pinned ? ` pinned to CPU ${LOAD_CPU}` : ''}${pinned ? ' (taskset -a)' : ' (not pinned)'}; loopback only`,
    `work: ${o.seconds} s per throughput figure after a warm-up, c=${o.window} = ${o.window} requests in flight; ` +
      `${fmtInt(o.devices)} devices for registration and core reads, ${fmtInt(o.flowDevices)} behind the flow, ${fmtInt(o.peerDevices)} for the peers`,
  ];
  console.log(header.join('\n'));
  const deadline = setTimeout(
    () => {
      console.error('bench: time limit reached, stopping every process');
      killAll();
      process.exit(1);
    },
    (o.quick ? 5 : 20) * 60_000,
  );
  deadline.unref();
  process.on('SIGINT', () => {
    killAll();
    process.exit(130);
  });
  const started = performance.now();
  const run = async (id: string, f: () => Promise<void> | void) => {
    if (o.only.size > 0 && !id.split(',').some((i) => o.only.has(i))) return;
    try {
      await f();
    } catch (err) {
      row(id, `section ${id}`, 'failed', '', '', (err as Error).message.split('\n')[0]);
    }
  };
  await run('1', () => section1(o));
  await run('2,3', () => sections2and3(o));
  await run('4', () => section4(o));
  await run('5', () => section5(o));
  await run('6', () => section6(o));
  await run('7', () => section7(o));
  await run('8', () => section8(o));
  await run('9', () => section9(o));
  header.push(`total time: ${((performance.now() - started) / 1000).toFixed(0)} s`);
  printTable(o, header);
  clearTimeout(deadline);
  killAll();
}

void main().catch((err) => {
  console.error(err);
  killAll();
  process.exit(1);
});
