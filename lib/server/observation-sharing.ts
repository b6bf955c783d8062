/**
 * Values many observations hold alike, kept once and shared (frozen): the one-path list of an observation, its list
 * of owners, and the Observe request the CoAP layer keeps to cancel it. At 100k observations each copy costs
 * 5-6 MB (an array is 56 bytes with its one element; a request object 64: bench/heap-per-device.ts); most
 * observations of a fleet have the same path, the same owner (one node) and the same request.
 */
import type { OutgoingRequest } from '../coap/types';
import type { LwM2mPath } from '../model/path';

/** Bound on each table: a server seeing endless distinct values keeps sharing the first ones and copies the rest. */
const MAX_SHARED = 4096;

const ONE_PATH = new WeakMap<LwM2mPath, readonly LwM2mPath[]>();

/**
 * `[path]` shared by every observation of that path (parsed paths are cached, so observations of the same path
 * hold the same LwM2mPath); a composite list as it is.
 */
export function sharedPaths(paths: readonly LwM2mPath[]): readonly LwM2mPath[] {
  if (paths.length !== 1) return paths;
  const path = paths[0];
  let shared = ONE_PATH.get(path);
  if (shared === undefined) ONE_PATH.set(path, (shared = Object.freeze([path])));
  return shared;
}

const OWNERS = new Map<string, readonly string[]>();

/** The owner list, shared with the other observations held by the same owners (in the same order). */
export function sharedOwners(owners: readonly string[]): readonly string[] {
  const key = owners.join('\n'); // node ids never hold a newline
  const known = OWNERS.get(key);
  if (known !== undefined) return known;
  const frozen = Object.freeze([...owners]);
  if (OWNERS.size < MAX_SHARED) OWNERS.set(key, frozen);
  return frozen;
}

const REQUESTS = new Map<string, OutgoingRequest>();

/**
 * An Observe (GET, Observe=0) request equal to `request`, shared: the CoAP layer keeps it for the observation's
 * life (to cancel it). Only a plain GET (path, query, accept, confirmable, time limit) is shared; anything with a
 * body, a token, options or a callback is returned as it is.
 */
export function sharedObserveRequest(request: OutgoingRequest): OutgoingRequest {
  if (
    request.method !== 'GET' ||
    request.observe !== 0 ||
    request.payload !== undefined ||
    request.token !== undefined ||
    request.options !== undefined ||
    request.onProgress !== undefined ||
    request.contentFormat !== undefined ||
    request.blockSize !== undefined
  )
    return request;
  const key = [
    request.pathSegments.join('/'),
    request.query?.join('&') ?? '',
    request.accept ?? '',
    request.timeoutMs ?? '',
    request.confirmable ?? '',
  ].join('\n');
  const known = REQUESTS.get(key);
  if (known !== undefined) return known;
  const frozen = Object.freeze(request);
  if (REQUESTS.size < MAX_SHARED) REQUESTS.set(key, frozen);
  return frozen;
}
