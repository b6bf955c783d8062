// Several server instances serving one fleet: the ClusterBus interface between them (Redis's in lib/store/redis)
// and requests, responses and errors as plain data on the wire between instances.
import type { IncomingResponse, OutgoingRequest } from '../coap/types';
import type { Peer } from '../transport/types';
import { Lwm2mRequestError } from './errors';

/**
 * Several server instances serving one fleet (behind a UDP load balancer, sharing one store). A device
 * talks to one instance at a time: the one that owns its socket (and its DTLS session). Requests for a
 * device are sent by that instance; an instance asked to reach a device it does not own hands the
 * request to the owner over the cluster bus, and gets the response back. A device whose owner has
 * gone is reached from the instance asked (its next uplink, through the load balancer, makes that
 * instance or another its owner).
 *
 * Device events (registered, notification, Send ...) are emitted by the instance the device talks to:
 * each happens once in the cluster, where a flow on that instance handles it.
 */
export interface ClusterBus {
  /** This instance's id (stable across restarts of the same instance). */
  readonly instanceId: string;
  /** The instance that last heard from the device of this registration (undefined: not known, treat as ours). */
  ownerOf(registrationId: string): string | undefined;
  /**
   * Whether calls can be made now (the bus, e.g. Redis, is reachable). While it is not, nobody can tell whether
   * an owner is alive, and an answer the device sends goes to its owner: a request for another instance's device
   * fails at once, saying why.
   */
  readonly reachable: boolean;
  /** Whether an instance is alive (it refreshed its heartbeat recently); rejects when the bus cannot be reached. */
  isAlive(instanceId: string): Promise<boolean>;
  /** Sends a message to another instance's handler; resolves with its answer, rejects with its error. */
  call(instanceId: string, message: ClusterCall, timeoutMs: number): Promise<unknown>;
  /** The handler for calls from other instances (one per instance: the server's). */
  serve(handler: ((message: ClusterCall) => Promise<unknown>) | undefined): void;
}

/** The name of the error a call fails with when the instance asked has gone (the caller reaches the device itself). */
export const INSTANCE_GONE = 'InstanceGone';

/** What one instance asks of the owner of a device. */
export type ClusterCall =
  | { op: 'send'; registrationId: string; request: unknown }
  | { op: 'observe'; registrationId: string; request: unknown }
  | { op: 'cancel'; peerKey: string; token: string; mode: 'active' | 'passive' };

/** A request as it crosses the bus: plain data (a progress callback, if any, stays behind). */
export function requestToWire(request: OutgoingRequest): unknown {
  const { method, pathSegments, query, contentFormat, accept, payload, observe, token, confirmable, options } = request;
  return {
    method,
    pathSegments,
    query,
    contentFormat,
    accept,
    payload: payload?.toString('base64'),
    observe,
    token: token?.toString('hex'),
    confirmable,
    options: options?.map((option) => ({ ...option, value: Buffer.from(option.value).toString('base64') })),
    timeoutMs: request.timeoutMs,
    blockSize: request.blockSize,
  };
}

export function requestFromWire(wire: unknown): OutgoingRequest {
  const item = wire as Record<string, unknown>;
  const request: OutgoingRequest = {
    method: item.method as OutgoingRequest['method'],
    pathSegments: item.pathSegments as string[],
  };
  if (Array.isArray(item.query)) request.query = item.query as string[];
  if (typeof item.contentFormat === 'number') request.contentFormat = item.contentFormat;
  if (typeof item.accept === 'number') request.accept = item.accept;
  if (typeof item.payload === 'string') request.payload = Buffer.from(item.payload, 'base64');
  if (item.observe === 0 || item.observe === 1) request.observe = item.observe;
  if (typeof item.token === 'string') request.token = Buffer.from(item.token, 'hex');
  if (typeof item.confirmable === 'boolean') request.confirmable = item.confirmable;
  if (Array.isArray(item.options))
    request.options = (item.options as Array<{ value: string }>).map((option) => ({
      ...(option as unknown as NonNullable<OutgoingRequest['options']>[number]),
      value: Buffer.from(option.value, 'base64'),
    }));
  if (typeof item.timeoutMs === 'number') request.timeoutMs = item.timeoutMs;
  if (typeof item.blockSize === 'number') request.blockSize = item.blockSize;
  return request;
}

export function responseToWire(response: IncomingResponse): unknown {
  return {
    code: response.code,
    contentFormat: response.contentFormat,
    observe: response.observe,
    payload: response.payload.toString('base64'),
    options: response.options.map((option) => ({ ...option, value: Buffer.from(option.value).toString('base64') })),
    token: response.token.toString('hex'),
    rttMs: response.rttMs,
  };
}

/** The owner's response, as if this instance had received it from `peer`. */
export function responseFromWire(wire: unknown, peer: Peer): IncomingResponse {
  const item = wire as Record<string, unknown>;
  const response: IncomingResponse = {
    peer,
    code: item.code as IncomingResponse['code'],
    payload: Buffer.from(String(item.payload ?? ''), 'base64'),
    options: ((item.options as Array<{ value: string }> | undefined) ?? []).map((option) => ({
      ...(option as unknown as IncomingResponse['options'][number]),
      value: Buffer.from(option.value, 'base64'),
    })),
    token: Buffer.from(String(item.token ?? ''), 'hex'),
    rttMs: typeof item.rttMs === 'number' ? item.rttMs : 0,
  };
  if (typeof item.contentFormat === 'number') response.contentFormat = item.contentFormat;
  if (typeof item.observe === 'number') response.observe = item.observe;
  return response;
}

/** An error thrown on the owner, carried back as plain data. */
export function errorToWire(err: unknown): {
  message: string;
  name: string;
  code?: string;
  endpoint?: string;
  path?: string;
} {
  const error = err instanceof Error ? err : new Error(String(err));
  const wire: { message: string; name: string; code?: string; endpoint?: string; path?: string } = {
    message: error.message,
    name: error.name,
  };
  if (err instanceof Lwm2mRequestError) {
    wire.code = err.code;
    if (err.endpoint !== undefined) wire.endpoint = err.endpoint;
    if (err.path !== undefined) wire.path = err.path;
  }
  return wire;
}

export function errorFromWire(wire: {
  message: string;
  name: string;
  code?: string;
  endpoint?: string;
  path?: string;
}): Error {
  if (wire.name === 'Lwm2mRequestError' && wire.code !== undefined)
    return new Lwm2mRequestError(wire.message, wire.code as Lwm2mRequestError['code'], wire.endpoint, wire.path);
  const error = new Error(wire.message);
  error.name = wire.name;
  return error;
}
