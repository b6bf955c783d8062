/**
 * Time budgets derived from the RFC 7252 transmission parameters (§4.8.2), for exchanges whose size
 * is known in advance (a firmware image pushed with Block1, a large value read with Block2).
 */
import type { CoapEndpointOptions } from './types';

/** The transmission parameters the budgets derive from; `CoapEndpoint.options` fits as it is. */
export type TransmissionParameters = Partial<
  Pick<CoapEndpointOptions, 'ackTimeoutMs' | 'ackRandomFactor' | 'maxRetransmit' | 'blockSize'>
>;

export interface RequestTimeoutOptions extends TransmissionParameters {
  /**
   * Retransmissions budgeted for every block (default 1: each block may be lost once, in either
   * direction). `maxRetransmit` budgets the worst case for every block, i.e. MAX_TRANSMIT_WAIT per block.
   */
  retransmitsPerBlock?: number;
}

const DEFAULT_ACK_TIMEOUT_MS = 2000;
const DEFAULT_ACK_RANDOM_FACTOR = 1.5;
const DEFAULT_MAX_RETRANSMIT = 4;
const DEFAULT_BLOCK_SIZE = 1024;

/**
 * RFC 7252 MAX_TRANSMIT_WAIT: the longest a CON message and its retransmissions can wait for an ACK,
 * ACK_TIMEOUT * (2^(MAX_RETRANSMIT + 1) - 1) * ACK_RANDOM_FACTOR (93 s with the defaults).
 */
export function maxTransmitWait(p: TransmissionParameters = {}): number {
  const ackTimeoutMs = p.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS;
  const factor = p.ackRandomFactor ?? DEFAULT_ACK_RANDOM_FACTOR;
  const maxRetransmit = p.maxRetransmit ?? DEFAULT_MAX_RETRANSMIT;
  return ackTimeoutMs * (2 ** (maxRetransmit + 1) - 1) * factor;
}

/**
 * A hard overall limit (`OutgoingRequest.timeoutMs`) for an exchange that moves `bytes` of payload
 * block-wise in either direction (a Block1 write or a Block2 read), so that a flow can bound a large
 * transfer without cutting it short:
 *
 *   MAX_TRANSMIT_WAIT + blocks * perBlock,  blocks = max(1, ceil(bytes / blockSize)),
 *   perBlock = MAX_TRANSMIT_WAIT * (2^(r+1) - 1) / (2^(MAX_RETRANSMIT+1) - 1)
 *            = ACK_TIMEOUT * ACK_RANDOM_FACTOR * (2^(r+1) - 1),   r = retransmitsPerBlock
 *
 * i.e. every block may take the share of MAX_TRANSMIT_WAIT that a message needing r retransmissions
 * spends (9 s per block with the RFC defaults and r = 1), plus one whole MAX_TRANSMIT_WAIT for a block
 * that needs every retransmission. With the defaults a 1 MiB transfer in 1024-byte blocks gets about
 * 2 h 35 min, 64 KiB about 11 min, one block 1 min 42 s.
 *
 * Without `timeoutMs` an exchange has no overall limit at all: it fails only when one step makes no
 * progress for `requestTimeoutMs` (MAX_TRANSMIT_WAIT by default), re-armed by every block.
 */
export function requestTimeoutFor(bytes: number, options: RequestTimeoutOptions = {}): number {
  if (!(bytes >= 0)) throw new RangeError('bytes must be a number >= 0');
  const blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
  if (!(blockSize >= 16 && blockSize <= 1024)) throw new RangeError('blockSize must be within 16..1024');
  const r = options.retransmitsPerBlock ?? 1;
  if (!(r >= 0)) throw new RangeError('retransmitsPerBlock must be >= 0');
  const blocks = Math.max(1, Math.ceil(bytes / blockSize));
  const ackTimeoutMs = options.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS;
  const factor = options.ackRandomFactor ?? DEFAULT_ACK_RANDOM_FACTOR;
  const perBlock = ackTimeoutMs * factor * (2 ** (r + 1) - 1);
  return Math.ceil(maxTransmitWait(options) + blocks * perBlock);
}
