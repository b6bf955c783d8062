import type { EventEmitter } from 'node:events';
import { decodeNode } from '../../lib/content';
import { ObjectModel } from '../../lib/model/object-model';
import { LwM2mPath } from '../../lib/model/path';
import type { LwM2mNode, ResourceValue } from '../../lib/model/types';
import type { RecordedRequest } from '../peers/coap-device';

export const MODEL = ObjectModel.withBuiltins();

/** Short CoAP timing: a silent device is given up on in well under a second. */
export const FAST_COAP = { ackTimeoutMs: 100, ackRandomFactor: 1, maxRetransmit: 1, requestTimeoutMs: 400 };

/** Resolves with the first argument of the next `name` event. */
export function nextEvent<T>(emitter: EventEmitter, name: string, timeoutMs = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(name, listener);
      reject(new Error(`no ${name} event in ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (value: T): void => {
      clearTimeout(timer);
      resolve(value);
    };
    emitter.once(name, listener);
  });
}

export type Plain = Record<number, unknown>;

/** A written instance's resources: id -> value (opaque as hex, multiple resources as { instanceId: value }). */
export function resourcesOf(node: LwM2mNode): Plain {
  if (node.kind !== 'instance') throw new Error(`expected an instance, got ${node.kind}`);
  const out: Plain = {};
  for (const [id, resource] of node.resources) {
    if (resource.kind === 'resource') out[id] = show(resource.value);
    else out[id] = Object.fromEntries([...resource.instances].map(([i, value]) => [i, show(value)]));
  }
  return out;
}

function show(value: ResourceValue): unknown {
  if (Buffer.isBuffer(value)) return value.toString('hex');
  if (typeof value === 'bigint') return Number(value);
  return value;
}

/** Decodes a recorded BS-Write with our codecs, at the path it went to. */
export function decodeWrite(request: RecordedRequest): Plain {
  const path = LwM2mPath.parse(request.url.split('?')[0]);
  if (request.contentFormat === undefined) throw new Error(`${request.url}: no content format`);
  return resourcesOf(decodeNode(request.payload, request.contentFormat, path, MODEL));
}

/** `METHOD /path` of each request, to compare sequences at a glance. */
export function sequence(requests: RecordedRequest[]): string[] {
  return requests.map((request) => `${request.method} ${request.url.split('?')[0]}`);
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
