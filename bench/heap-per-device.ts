/**
 * What the server's heap holds per registered device, by kind of object: the memory section's set-up (in-memory
 * transport, lean devices in the process, one observation each, steady state) with a heap snapshot before the
 * devices register and one after, and the growth between them per device, grouped by constructor (plain objects
 * and arrays by their first property names, so a registration and a stored observation show apart).
 *
 *   node --expose-gc --max-old-space-size=4096 build/bench/heap-per-device.js [devices (20000)] [rows (30)]
 *
 * The figures in the memory comments of lib/server (bytes per registration record, observation, Map entry) come
 * from this. The Map backing tables show as "array" of count ~0 (one table per Map); at 20k devices a Map entry
 * costs about 46 bytes, at 100k about 37 (the table's fill).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { memoryHandlers } from './roles/memory';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

/** Self size and count per kind of object in a heap snapshot file. */
function kinds(file: string): Map<string, { count: number; bytes: number }> {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const meta = snap.snapshot.meta;
  const nodeFields = meta.node_fields.length;
  const edgeFields = meta.edge_fields.length;
  const [nodeTypes] = meta.node_types;
  const [edgeTypes] = meta.edge_types;
  const typeAt = meta.node_fields.indexOf('type');
  const nameAt = meta.node_fields.indexOf('name');
  const sizeAt = meta.node_fields.indexOf('self_size');
  const edgeCountAt = meta.node_fields.indexOf('edge_count');
  const edgeTypeAt = meta.edge_fields.indexOf('type');
  const edgeNameAt = meta.edge_fields.indexOf('name_or_index');
  const { nodes, edges, strings } = snap;
  const result = new Map<string, { count: number; bytes: number }>();
  let edge = 0;
  for (let i = 0; i < nodes.length; i += nodeFields) {
    const type = nodeTypes[nodes[i + typeAt]];
    const edgeCount = nodes[i + edgeCountAt];
    let name = strings[nodes[i + nameAt]];
    if (type.endsWith('string')) name = '';
    else if (type === 'code' || type === 'number') name = '';
    else if (type === 'object' && (name === 'Object' || name === 'Array')) {
      const properties: string[] = [];
      for (let j = edge; j < edge + edgeCount && properties.length < 8; j++) {
        if (edgeTypes[edges[j * edgeFields + edgeTypeAt]] === 'property')
          properties.push(strings[edges[j * edgeFields + edgeNameAt]]);
      }
      name += `{${properties.join(',')}}`;
    }
    edge += edgeCount;
    const key = `${type} ${name}`.slice(0, 100);
    const kind = result.get(key) ?? { count: 0, bytes: 0 };
    kind.count++;
    kind.bytes += nodes[i + sizeAt];
    result.set(key, kind);
  }
  return result;
}

async function main(): Promise<void> {
  const devices = Number(process.argv[2] ?? 20_000);
  const rows = Number(process.argv[3] ?? 30);
  const dir = mkdtempSync(path.join(tmpdir(), 'heap-per-device-'));
  try {
    const before = path.join(dir, 'before.heapsnapshot');
    const after = path.join(dir, 'after.heapsnapshot');
    const measured = (await memoryHandlers.measure({
      count: devices,
      window: 2000,
      steadyAfterMs: 2000,
      timeoutMs: 300_000,
      heapSnapshot: after,
      heapSnapshotBefore: before,
    })) as { heapPerDevice: number; failed: number };
    const grown = kinds(after);
    const base = kinds(before);
    let total = 0;
    const growth: Array<[string, number, number]> = [];
    for (const [key, { count, bytes }] of grown) {
      const was = base.get(key) ?? { count: 0, bytes: 0 };
      growth.push([key, (count - was.count) / devices, (bytes - was.bytes) / devices]);
      total += (bytes - was.bytes) / devices;
    }
    growth.sort((a, b) => b[2] - a[2]);
    console.log(
      `${devices} devices, one observation each, steady state: ${total.toFixed(0)} B of heap objects per device ` +
        `(heapUsed growth ${measured.heapPerDevice.toFixed(0)} B${measured.failed ? `; ${measured.failed} failed` : ''})`,
    );
    console.log(' B/device  count/device  kind');
    for (const [key, count, bytes] of growth.slice(0, rows))
      console.log(`${bytes.toFixed(1).padStart(9)}  ${count.toFixed(2).padStart(12)}  ${key}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
