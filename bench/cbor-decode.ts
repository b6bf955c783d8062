/**
 * Micro-benchmark of the CBOR decoding on the message path: typical LwM2M CBOR and SenML CBOR
 * payloads decoded with decodeNode / decodeNodes, in one process, no network. Run after a build:
 *
 *   node build/bench/cbor-decode.js [--rounds 7] [--ms 400]
 *
 * Prints decodes per second of CPU time for each payload (the median of the rounds). Not run by
 * `npm test`.
 */
import { decodeNode, decodeNodes, encodeNode, encodeNodes } from '../lib/content';
import { ContentFormat } from '../lib/content/types';
import { LwM2mPath } from '../lib/model/path';
import { ObjectModel } from '../lib/model/object-model';
import type { LwM2mNode, LwM2mObjectInstance, LwM2mResource } from '../lib/model/types';

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const model = ObjectModel.withBuiltins();
const p = (text: string) => LwM2mPath.parse(text);

const device: LwM2mObjectInstance = {
  kind: 'instance',
  id: 0,
  resources: new Map<number, LwM2mResource>([
    [0, { kind: 'resource', id: 0, type: 'string', value: 'Open Mobile Alliance' }],
    [1, { kind: 'resource', id: 1, type: 'string', value: 'Lightweight M2M Client' }],
    [2, { kind: 'resource', id: 2, type: 'string', value: '345000123' }],
    [3, { kind: 'resource', id: 3, type: 'string', value: '1.0' }],
    [
      6,
      {
        kind: 'multipleResource',
        id: 6,
        type: 'integer',
        instances: new Map([
          [0, 1],
          [1, 5],
        ]),
      },
    ],
    [
      7,
      {
        kind: 'multipleResource',
        id: 7,
        type: 'integer',
        instances: new Map([
          [0, 3800],
          [1, 5000],
        ]),
      },
    ],
    [9, { kind: 'resource', id: 9, type: 'integer', value: 100 }],
    [10, { kind: 'resource', id: 10, type: 'integer', value: 15 }],
    [13, { kind: 'resource', id: 13, type: 'time', value: new Date(1367491215000) }],
    [14, { kind: 'resource', id: 14, type: 'string', value: '+02:00' }],
    [16, { kind: 'resource', id: 16, type: 'string', value: 'U' }],
  ]),
};

const composite = new Map<string, LwM2mNode>([
  ['/3/0/0', device.resources.get(0) as LwM2mNode],
  ['/3/0/9', device.resources.get(9) as LwM2mNode],
  ['/3303/0/5700', { kind: 'resource', id: 5700, type: 'float', value: 21.5 }],
  ['/1/1/1', { kind: 'resource', id: 1, type: 'integer', value: 300 }],
]);
const compositePaths = [...composite.keys()].map(p);

const cases: [string, () => unknown][] = [
  [
    'LwM2M CBOR, Device instance /3/0 (decodeNode)',
    (
      (bytes) => () =>
        decodeNode(bytes, ContentFormat.LWM2M_CBOR, p('/3/0'), model)
    )(encodeNode(device, ContentFormat.LWM2M_CBOR, p('/3/0'), model)),
  ],
  [
    'LwM2M CBOR, one resource /3303/0/5700 (decodeNode)',
    (
      (bytes) => () =>
        decodeNode(bytes, ContentFormat.LWM2M_CBOR, p('/3303/0/5700'), model)
    )(encodeNode(composite.get('/3303/0/5700') as LwM2mNode, ContentFormat.LWM2M_CBOR, p('/3303/0/5700'), model)),
  ],
  [
    'LwM2M CBOR, Read-Composite of 4 paths (decodeNodes)',
    (
      (bytes) => () =>
        decodeNodes(bytes, ContentFormat.LWM2M_CBOR, model, compositePaths)
    )(encodeNodes(composite, ContentFormat.LWM2M_CBOR, model)),
  ],
  [
    'SenML CBOR, Device instance /3/0 (decodeNode)',
    (
      (bytes) => () =>
        decodeNode(bytes, ContentFormat.SENML_CBOR, p('/3/0'), model)
    )(encodeNode(device, ContentFormat.SENML_CBOR, p('/3/0'), model)),
  ],
  [
    'CBOR (60), one value /3303/0/5700 (decodeNode)',
    (
      (bytes) => () =>
        decodeNode(bytes, ContentFormat.CBOR, p('/3303/0/5700'), model)
    )(encodeNode(composite.get('/3303/0/5700') as LwM2mNode, ContentFormat.CBOR, p('/3303/0/5700'), model)),
  ],
];

/** Decodes per second of this process's CPU time (user + system): less sensitive to a busy machine. */
function rate(run: () => unknown, ms: number): number {
  let count = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(ms) * 1_000_000n;
  const cpu = process.cpuUsage();
  while (process.hrtime.bigint() < end) {
    for (let i = 0; i < 200; i++) run();
    count += 200;
  }
  const used = process.cpuUsage(cpu);
  return (count * 1e6) / (used.user + used.system);
}

const rounds = option('--rounds', 7);
const ms = option('--ms', 400);
for (const [name, run] of cases) {
  rate(run, ms); // warm up
  const rates: number[] = [];
  for (let r = 0; r < rounds; r++) rates.push(rate(run, ms));
  rates.sort((a, b) => a - b);
  const median = rates[Math.floor(rates.length / 2)];
  console.log(`${name.padEnd(56)} ${Math.round(median).toLocaleString('en-US').padStart(10)} decodes per CPU second`);
}
