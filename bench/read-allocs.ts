/**
 * Bytes allocated and GC work per core read (or per Update handled), a figure that does not depend on a busy
 * machine: `node build/bench/read-allocs.js [--op read|update] [--devices 1000] [--reads 100000] [--fleet]
 * [--profile [--survivors] [--top 30]]`. With `--op update` the lean devices send Updates for `--reads` / 20,000
 * seconds (they pace themselves; the count is what they managed), not a fixed number.
 *
 * The server (an `Lwm2mServer` on UDP, as bench/roles/server.ts runs it) lives in this process; lean devices answer
 * from a child on the other CPU. A fixed number of reads is run c=64 after a warm-up, and this process reports
 * its scavenges and GC time (PerformanceObserver 'gc'), its CPU per operation, and with `--profile` the inspector's
 * sampling heap profiler (every object counted, those a scavenge or a full GC collected included): bytes allocated
 * per operation and the allocation sites that account for most of them. Run it on two builds to compare them.
 */
import * as inspector from 'node:inspector';
import { PerformanceObserver, constants as perfConstants, type PerformanceEntry } from 'node:perf_hooks';
import { Lwm2mServer, NO_FLOOD_LIMITS } from '../lib/server/lwm2m-server';
import { BenchChild } from './rpc';
import { LEAN_PATH } from './lean-devices';
import { CpuMeter } from './stats';

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

function post<T>(session: inspector.Session, method: string, params: object = {}): Promise<T> {
  return new Promise((resolve, reject) =>
    session.post(method, params, (err, result) => (err ? reject(err) : resolve(result as T))),
  );
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

/** `count` operations, 64 in flight, as fast as they complete (closedLoop runs for a time instead). */
async function fixedLoop(count: number, op: (i: number) => Promise<unknown>): Promise<{ ops: number; errors: number }> {
  let next = 0;
  let ops = 0;
  let errors = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      try {
        await op(i);
        ops++;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: 64 }, worker));
  return { ops, errors };
}

async function main(): Promise<void> {
  const op = arg('--op', 'read');
  const devices = Number(arg('--devices', '1000'));
  const total = Number(arg('--reads', '100000'));
  const profile = process.argv.includes('--profile');
  // full Lwm2mClient devices (as section 6's plain row) instead of lean ones
  const fleet = process.argv.includes('--fleet');
  const server = new Lwm2mServer({ address: '127.0.0.1', port: 0, ...NO_FLOOD_LIMITS });
  server.on('error', () => undefined);
  const { port } = await server.start();
  const load = await BenchChild.start('devices', { cpu: 1, label: 'lean devices' });
  try {
    const regCpu = new CpuMeter();
    const reg = fleet
      ? await load.call(
          'fleetStart',
          {
            port,
            count: devices,
            prefix: 'lean-',
            lwm2mVersion: '1.1',
            objects: [3303],
            bind: '127.0.1.1-127.0.1.40',
            concurrency: 100,
            timeoutMs: 60_000,
          },
          120_000,
        )
      : await load.call('leanStart', {
          port,
          count: devices,
          prefix: 'lean-',
          bind: '127.0.2.1-127.0.2.40',
          window: 500,
          timeoutMs: 60_000,
        });
    if (reg.registered < devices) throw new Error(`only ${reg.registered} registered`);
    console.log(`registrations: ${devices}, server CPU ${(regCpu.elapsedUs() / devices).toFixed(1)} us each`);
    const run = (count: number): Promise<{ ops: number; errors: number }> =>
      op === 'update'
        ? load.call('leanUpdates', { window: 64, seconds: count / 20_000 }, 120_000)
        : fixedLoop(count, (i) => server.read(`lean-${(i % devices) + 1}`, LEAN_PATH, { timeoutMs: 10_000 }));
    await run(Math.min(total, 30_000)); // warm-up: optimised code, steady tables
    let scavenges = 0;
    let fullGcs = 0;
    let otherGcs = 0;
    let scavengeMs = 0;
    let fullMs = 0;
    let gcMs = 0;
    const obs = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const kind = (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
        if (kind === perfConstants.NODE_PERFORMANCE_GC_MINOR) {
          scavenges++;
          scavengeMs += e.duration;
        } else if (kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) {
          fullGcs++;
          fullMs += e.duration;
        } else otherGcs++;
        gcMs += e.duration;
      }
    });
    obs.observe({ entryTypes: ['gc'] });
    const session = new inspector.Session();
    session.connect();
    if (profile) {
      await post(session, 'HeapProfiler.startSampling', {
        samplingInterval: 512,
        includeObjectsCollectedByMajorGC: true,
        // --survivors: only what outlived a scavenge (promoted, then collected by a full GC or still live)
        includeObjectsCollectedByMinorGC: !process.argv.includes('--survivors'),
      });
    }
    const cpu = new CpuMeter();
    const t0 = performance.now();
    const r = await run(total);
    const wall = performance.now() - t0;
    const cpuUs = cpu.elapsedUs();
    await new Promise((resolve) => setTimeout(resolve, 100)); // the last gc entries
    obs.disconnect();
    const ops = r.ops;
    console.log(
      `${op}s: ${ops} (${r.errors} errors) in ${(wall / 1000).toFixed(2)} s; CPU ${(cpuUs / ops).toFixed(1)} us/op; ` +
        `${scavenges} scavenges (${((scavenges / ops) * 1000).toFixed(2)} per 1000 ops, ${scavengeMs.toFixed(0)} ms), ` +
        `${fullGcs} full GCs (${fullMs.toFixed(0)} ms), ${otherGcs} other, ` +
        `GC ${gcMs.toFixed(0)} ms = ${((gcMs * 1000) / ops).toFixed(2)} us/op, ${((gcMs * 100000) / cpuUs).toFixed(1)}% of CPU`,
    );
    if (profile) {
      const { profile: p } = await post<{ profile: { head: ProfileNode } }>(session, 'HeapProfiler.stopSampling');
      const sites = new Map<string, number>();
      let bytes = 0;
      const walk = (n: ProfileNode, parent: string): void => {
        const f = n.callFrame;
        const file = f.url.replace(/^.*\/(build|node_modules)\//, '');
        const here = `${f.functionName || '(anon)'} ${file}:${f.lineNumber + 1}`;
        if (n.selfSize > 0) {
          bytes += n.selfSize;
          const key = file === '' ? `${here} <- ${parent}` : here;
          sites.set(key, (sites.get(key) ?? 0) + n.selfSize);
        }
        for (const c of n.children) walk(c, file === '' ? parent : here);
      };
      walk(p.head, '');
      console.log(`sampled allocation: ${(bytes / ops).toFixed(0)} bytes per ${op}`);
      const top = [...sites].sort((a, b) => b[1] - a[1]).slice(0, Number(arg('--top', '30')));
      for (const [site, b] of top) console.log(`  ${(b / ops).toFixed(0).padStart(6)} B  ${site}`);
    }
    session.disconnect();
  } finally {
    if (fleet) await load.call('fleetStop', {}, 60_000);
    await load.stop();
    await server.stop();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
