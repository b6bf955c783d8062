/**
 * The CoAP endpoint's options resolved once per endpoint: the defaults, and the values derived from the RFC 7252
 * transmission parameters (request timeout, separate-response delay, block transfer timeout, sweep period).
 */
import { maxTransmitWait } from './timeouts';
import type { CoapEndpointOptions } from './types';

export type ResolvedCoapEndpointOptions = Required<CoapEndpointOptions>;

/** Defaults for everything except the derived values (see resolveOptions). */
export const DEFAULT_OPTIONS: Readonly<CoapEndpointOptions> = Object.freeze({
  ackTimeoutMs: 2000,
  ackRandomFactor: 1.5,
  maxRetransmit: 4,
  nstart: 1,
  maxQueuedPerPeer: 256,
  blockSize: 1024,
  exchangeLifetimeMs: 247_000,
  maxDedupEntries: 100_000,
  maxDedupEntriesPerPeer: 1000,
  maxConcurrentPerPeer: 8,
  maxRequestsPerSecondPerAddress: 1000,
  maxBlockTransfers: 200,
  maxBodySize: 1024 * 1024,
  maxBlockTransfersPerPeer: 4,
  maxResponseBodySize: 16 * 1024 * 1024,
  maxConcurrentTotal: 10_000,
  overloadMaxAgeS: 5,
  failQueuedOnTimeout: true,
});

export function resolveOptions(options: Partial<CoapEndpointOptions> = {}): ResolvedCoapEndpointOptions {
  const defined: Partial<CoapEndpointOptions> = {};
  for (const [k, v] of Object.entries(options)) if (v !== undefined) (defined as Record<string, unknown>)[k] = v;
  const o = { ...DEFAULT_OPTIONS, ...defined } as CoapEndpointOptions;
  const requestTimeoutMs = o.requestTimeoutMs ?? maxTransmitWait(o);
  if (!(o.blockSize >= 16 && o.blockSize <= 1024)) throw new RangeError('blockSize must be within 16..1024');
  if (!(o.nstart >= 1)) throw new RangeError('nstart must be >= 1');
  return {
    ...o,
    separateResponseAfterMs: o.separateResponseAfterMs ?? o.ackTimeoutMs / 2,
    requestTimeoutMs,
    maxBlockTransfersPerPeer: o.maxBlockTransfersPerPeer ?? 4,
    blockTransferTimeoutMs: o.blockTransferTimeoutMs ?? requestTimeoutMs,
    maxResponseBodySize: o.maxResponseBodySize ?? 16 * 1024 * 1024,
    maxConcurrentTotal: o.maxConcurrentTotal ?? 10_000,
    overloadMaxAgeS: o.overloadMaxAgeS ?? 5,
    failQueuedOnTimeout: o.failQueuedOnTimeout ?? true,
    sweepIntervalMs: o.sweepIntervalMs ?? Math.max(10, Math.min(1000, o.exchangeLifetimeMs / 4)),
  };
}
