/**
 * Server side for the side-by-side comparison: our server, lwm2m-node-lib or coap-shepherd, each
 * driven the same way: devices register, then `window` reads at a time through the server's own API.
 * The peers come from bench/peers/node_modules (installed by the bench on first run).
 */
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { Lwm2mServer } from '../../lib/server/lwm2m-server';
import { closedLoop, CpuMeter } from '../stats';
import type { Handler } from '../rpc';
import { waitFor } from './server';

export const PEERS_DIR = path.resolve(__dirname, '..', '..', '..', 'bench', 'peers');

type Kind = 'ours' | 'lwm2m-node-lib' | 'coap-shepherd';

interface NodeLibServer {
  start(config: Record<string, unknown>, cb: (err: Error | null, info: unknown) => void): void;
  stop(info: unknown, cb: (err?: Error) => void): void;
  listDevices(cb: (err: Error | null, devices: Array<{ id: number; name: string }>) => void): void;
  read(id: number, o: string, i: string, r: string, cb: (err: Error | null, value: string) => void): void;
}

interface ShepherdNode {
  status: string;
  readReq(path: string): Promise<{ status: string; data?: unknown }>;
}

interface Shepherd {
  start(): Promise<void>;
  stop(): Promise<void>;
  permitJoin(seconds: number): boolean;
  find(name: string): ShepherdNode | undefined;
  on(event: string, listener: (...args: unknown[]) => void): void;
  _registry: Record<string, ShepherdNode>;
}

const cpu = new CpuMeter();
let kind: Kind | undefined;
let ours: Lwm2mServer | undefined;
let nodeLib: { server: NodeLibServer; info: unknown; ids: Map<string, number> } | undefined;
let shepherd: Shepherd | undefined;
let peerErrors = 0;
/** Endpoint names the server reported ready at the end of waitReady. */
let readyNames: string[] = [];

function peerRequire(name: string): unknown {
  return require(path.join(PEERS_DIR, 'node_modules', name));
}

async function freePort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

async function ready(): Promise<string[]> {
  if (kind === 'ours') return (await ours!.listRegistrations()).map((r) => r.endpoint);
  if (kind === 'lwm2m-node-lib') {
    return new Promise((resolve) =>
      nodeLib!.server.listDevices((_e, list) => resolve((list ?? []).map((d) => d.name))),
    );
  }
  // coap-shepherd answers requests only once it has read the device's objects ('online')
  return Object.entries(shepherd!._registry)
    .filter(([, n]) => n.status === 'online')
    .map(([name]) => name);
}

async function count(): Promise<number> {
  return (await ready()).length;
}

export const peerHandlers: Record<string, Handler> = {
  cpuMark: () => cpu.mark(),
  cpuRead: () => cpu.elapsedUs(),
  memory: () => process.memoryUsage(),

  async start(args: { kind: Kind }) {
    kind = args.kind;
    if (kind === 'ours') {
      ours = new Lwm2mServer({ address: '127.0.0.1', port: 0 });
      ours.on('error', () => undefined);
      return (await ours.start()).port;
    }
    const port = await freePort();
    if (kind === 'lwm2m-node-lib') {
      const server = (peerRequire('lwm2m-node-lib') as { server: NodeLibServer }).server;
      const info = await new Promise<unknown>((resolve, reject) =>
        server.start(
          {
            port,
            lifetimeCheckInterval: 1000,
            udpWindow: 100,
            defaultType: 'Device',
            logLevel: 'FATAL',
            ipProtocol: 'udp4',
            serverProtocol: 'udp4',
            deviceRegistry: { type: 'memory' },
          },
          (err, result) => (err ? reject(err) : resolve(result)),
        ),
      );
      nodeLib = { server, info, ids: new Map() };
      return port;
    }
    // coap-shepherd: a singleton configured through its config module before it is loaded; it keeps
    // its registry in a NeDB file inside its package folder, removed first so every run starts empty
    const config = peerRequire('coap-shepherd/lib/config') as Record<string, unknown>;
    config.port = port;
    config.ip = '127.0.0.1';
    fs.rmSync(String(config.defaultDbPath), { force: true });
    shepherd = peerRequire('coap-shepherd') as Shepherd;
    shepherd.on('error', () => peerErrors++);
    await shepherd.start();
    shepherd.permitJoin(3600);
    return port;
  },

  /** Waits until `count` devices are ready, or `timeoutMs`, or no more became ready for 5 s. */
  async waitReady(args: { count: number; timeoutMs: number }) {
    const t0 = performance.now();
    let last = -1;
    let lastChange = performance.now();
    await waitFor(async () => {
      const n = await count();
      if (n !== last) {
        last = n;
        lastChange = performance.now();
      }
      return n >= args.count || performance.now() - lastChange > 5000;
    }, args.timeoutMs);
    if (kind === 'lwm2m-node-lib') {
      const list = await new Promise<Array<{ id: number; name: string }>>((resolve, reject) =>
        nodeLib!.server.listDevices((e, l) => (e ? reject(e) : resolve(l))),
      );
      for (const d of list) nodeLib!.ids.set(d.name, d.id);
    }
    readyNames = await ready();
    return { ready: readyNames.length, seconds: (performance.now() - t0) / 1000, peerErrors };
  },

  /** Reads round-robin over prefix1..prefixN, or over the devices found ready (`readyOnly`). */
  async readLoop(args: {
    prefix: string;
    count: number;
    path: string;
    window: number;
    seconds: number;
    readyOnly?: boolean;
  }) {
    const names = args.readyOnly ? readyNames : Array.from({ length: args.count }, (_, k) => `${args.prefix}${k + 1}`);
    const [o, i, r] = args.path.split('/').filter(Boolean);
    let op: (name: string) => Promise<unknown>;
    if (kind === 'ours') op = (name) => ours!.read(name, args.path, { timeoutMs: 10_000 });
    else if (kind === 'lwm2m-node-lib') {
      const { server, ids } = nodeLib!;
      op = (name) =>
        new Promise((resolve, reject) => {
          const id = ids.get(name);
          if (id === undefined) return reject(new Error(`${name} not registered`));
          server.read(id, o, i, r, (err, value) => (err ? reject(err) : resolve(value)));
        });
    } else {
      op = async (name) => {
        const n = shepherd!.find(name);
        if (!n) throw new Error(`${name} not registered`);
        const rsp = await n.readReq(args.path);
        if (rsp.status !== '2.05') throw new Error(`read answered ${rsp.status}`);
        return rsp.data;
      };
    }
    return closedLoop({
      window: args.window,
      seconds: args.seconds,
      op: (k) => op(names[k % names.length]),
    });
  },
};

export async function peerCleanup(): Promise<void> {
  if (ours) await ours.stop();
  if (nodeLib) await new Promise<void>((resolve) => nodeLib!.server.stop(nodeLib!.info, () => resolve()));
  if (shepherd) await shepherd.stop().catch(() => undefined);
}
