/**
 * Server side inside Node-RED: a real embedded Node-RED runtime (as `npm start` runs it, editor off)
 * with our package installed in its user directory (a link to this project: Node-RED loads dist/nodes
 * from our package.json), Node-RED's own inject and catch nodes, and a one-line counter node:
 *
 *   inject -> lwm2m-read -> counter          catch(lwm2m-read) -> counter
 *   lwm2m-observe (every flow-* device, /3303/0/5700) -> counter
 *
 * Reads: msgs are fed to the inject node (as its button or a timer would), `window` in flight; each
 * msg carries its endpoint (msg.endpoint); the next goes in when one arrives at the counter.
 * (node-red-node-test-helper is not used here: it wraps every node method in a recording sinon spy,
 * which would dominate the profile.)
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Lwm2mServer } from '../../lib/server/lwm2m-server';
import { CpuMeter, Latencies, sleep } from '../stats';
import type { Handler } from '../rpc';
import { waitFor } from './server';

interface RuntimeNode {
  receive(msg: Record<string, unknown>): void;
  server?: Lwm2mServer;
}

interface NodeRed {
  init(server: http.Server, settings: Record<string, unknown>): void;
  start(): Promise<void>;
  stop(): Promise<void>;
  nodes: { getNode(id: string): RuntimeNode | null };
}

const PROJECT_ROOT = path.resolve(__dirname, '..', '..', '..');

const COUNTER_JS = `module.exports = function (RED) {
  function BenchCounter(config) {
    RED.nodes.createNode(this, config);
    const name = config.name;
    this.on('input', (msg, send, done) => {
      globalThis.__lwm2mBenchCounter?.(name, msg);
      done();
    });
  }
  RED.nodes.registerType('bench-counter', BenchCounter);
};
`;
const COUNTER_HTML = `<script type="text/javascript">
RED.nodes.registerType('bench-counter', { category: 'function', defaults: { name: { value: '' } }, inputs: 1, outputs: 0 });
</script>
`;

const cpu = new CpuMeter();
let red: NodeRed | undefined;
let userDir: string | undefined;
let flowMsgs = 0;
let notifications = 0;
let onRead: ((msg: Record<string, unknown>, error: boolean) => void) | undefined;

function node(id: string): RuntimeNode {
  const n = red!.nodes.getNode(id);
  if (!n) throw new Error(`node ${id} is not running`);
  return n;
}

function serverOf(): Lwm2mServer {
  return node('srv').server!;
}

export const noderedHandlers: Record<string, Handler> = {
  cpuMark: () => cpu.mark(),
  cpuRead: () => cpu.elapsedUs(),
  memory: () => process.memoryUsage(),

  /** Starts Node-RED with the flow; resolves with the UDP port our server node listens on. */
  async start(args: { observePattern: string; path: string; server?: Record<string, string> }) {
    userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lwm2m-bench-red-'));
    const modules = path.join(userDir, 'node_modules');
    fs.mkdirSync(path.join(modules, 'lwm2m-bench-counter'), { recursive: true });
    fs.symlinkSync(PROJECT_ROOT, path.join(modules, 'node-red-contrib-lwm2m-server'), 'dir');
    fs.writeFileSync(
      path.join(modules, 'lwm2m-bench-counter', 'package.json'),
      JSON.stringify({
        name: 'lwm2m-bench-counter',
        version: '1.0.0',
        'node-red': { nodes: { counter: 'counter.js' } },
      }),
    );
    fs.writeFileSync(path.join(modules, 'lwm2m-bench-counter', 'counter.js'), COUNTER_JS);
    fs.writeFileSync(path.join(modules, 'lwm2m-bench-counter', 'counter.html'), COUNTER_HTML);
    const at = (x: number, y: number) => ({ z: 'tab', x, y });
    const flow = [
      { id: 'tab', type: 'tab', label: 'bench' },
      // Throughput into the flow is measured, not the flood guards (notification ceiling and flood limit off),
      // unless the caller gives the server's settings (bench/floods.ts).
      {
        id: 'srv',
        type: 'lwm2m-server',
        address: '127.0.0.1',
        port: '0',
        ...(args.server ?? { notificationRate: '0', floodSeconds: '0' }),
      },
      {
        id: 'n-inject',
        type: 'inject',
        props: [{ p: 'payload' }],
        repeat: '',
        once: false,
        wires: [['n-read']],
        ...at(100, 100),
      },
      { id: 'n-read', type: 'lwm2m-read', server: 'srv', path: args.path, wires: [['n-read-out']], ...at(300, 100) },
      { id: 'n-read-out', type: 'bench-counter', name: 'read', ...at(500, 100) },
      { id: 'n-catch', type: 'catch', scope: ['n-read'], uncaught: false, wires: [['n-read-err']], ...at(100, 200) },
      { id: 'n-read-err', type: 'bench-counter', name: 'error', ...at(300, 200) },
      {
        id: 'n-observe',
        type: 'lwm2m-observe',
        server: 'srv',
        endpoint: args.observePattern,
        path: args.path,
        startOn: 'deploy',
        wires: [['n-notify-out']],
        ...at(100, 300),
      },
      { id: 'n-notify-out', type: 'bench-counter', name: 'notify', ...at(300, 300) },
    ];
    fs.writeFileSync(path.join(userDir, 'flows.json'), JSON.stringify(flow));
    (globalThis as Record<string, unknown>).__lwm2mBenchCounter = (name: string, msg: Record<string, unknown>) => {
      if (name === 'notify') {
        if ((msg.lwm2m as { event?: string } | undefined)?.event === 'notification') flowMsgs++;
      } else onRead?.(msg, name === 'error');
    };

    red = require('node-red') as NodeRed;
    red.init(http.createServer(), {
      userDir,
      flowFile: 'flows.json',
      credentialSecret: false,
      httpAdminRoot: false,
      httpNodeRoot: false,
      disableEditor: true,
      logging: { console: { level: 'warn', metrics: false, audit: false } },
      externalModules: { autoInstall: false, palette: { allowInstall: false } },
    });
    await red.start();
    await waitFor(() => red!.nodes.getNode('srv')?.server?.running === true, 30_000);
    const server = serverOf();
    server.on('notification', () => notifications++);
    return server.address!.port;
  },

  async waitRegistered(args: { count: number; timeoutMs: number }) {
    const s = serverOf();
    await waitFor(async () => (await s.registrations.size()) >= args.count, args.timeoutMs);
    return s.registrations.size();
  },

  /** Waits until the observe node holds `count` observations. */
  async waitObserved(args: { count: number; timeoutMs: number }) {
    const s = serverOf();
    const t0 = performance.now();
    await waitFor(async () => (await s.listObservations()).length >= args.count, args.timeoutMs);
    return { observed: (await s.listObservations()).length, seconds: (performance.now() - t0) / 1000 };
  },

  counts: () => ({ flowMsgs, notifications }),

  /** Reads through the flow, `window` msgs in flight, round-robin over prefix1..prefixN, for `seconds`. */
  async readLoop(args: { prefix: string; count: number; window: number; seconds: number; warmupMs?: number }) {
    const inject = node('n-inject');
    const latencies = new Latencies();
    let seq = 0;
    let ok = 0;
    let errors = 0;
    let measuring = false;
    let running = true;
    let inFlight = 0;
    const sendOne = () => {
      inFlight++;
      const i = seq++;
      inject.receive({
        endpoint: `${args.prefix}${(i % args.count) + 1}`,
        benchT: performance.now(),
        benchM: measuring,
      });
    };
    onRead = (msg, error) => {
      inFlight--;
      if (msg.benchM) {
        if (error) errors++;
        else {
          ok++;
          latencies.add(performance.now() - (msg.benchT as number));
        }
      }
      if (running) sendOne();
    };
    for (let i = 0; i < args.window; i++) sendOne();
    await sleep(args.warmupMs ?? 500);
    measuring = true;
    cpu.mark();
    const t0 = performance.now();
    await sleep(args.seconds * 1000);
    running = false;
    await waitFor(() => inFlight <= 0, 10_000);
    const elapsed = (performance.now() - t0) / 1000;
    onRead = undefined;
    return { ops: ok, errors, seconds: elapsed, ...latencies.summary(), cpuUs: cpu.elapsedUs() };
  },
};

export async function noderedCleanup(): Promise<void> {
  await red?.stop().catch(() => undefined);
  if (userDir) fs.rmSync(userDir, { recursive: true, force: true });
}
