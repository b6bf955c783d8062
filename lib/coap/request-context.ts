/**
 * An incoming request being processed: what its options said (read once, in `readRequestOptions`), the block-wise
 * state of its answer, and the timer that switches it to a separate response. Short-lived: it ends with the
 * handler's response.
 */
import type { Peer } from '../transport/types';
import { OptionNumber, OptionNumbers, decodeFormatOption, decodeUint, type ParsedPacket } from './codec';
import type { InEntry } from './peer';
import type { TimerItem } from './timers';
import type { CoapOption } from './types';

/** Whoever answers incoming requests (the incoming layer): told when a handler is slow. */
export interface SeparateResponseTimer {
  onSeparateTimer(c: InCtx): void;
}

/** An incoming request being processed (short-lived; the timer item for the separate-response delay). */
export class InCtx implements TimerItem {
  timerAt = 0;
  timerIdx = -1;
  /** Block1 option value to echo in the final response, -1 none. */
  b1echo = -1;
  /** Block2 requested by the client: NUM and SZX (-1 = none). */
  b2num = 0;
  b2szx = -1;
  /** Block2 cache key, computed when needed. */
  b2key: string | null = null;
  /** Uri-Path segments and Uri-Query values, decoded as UTF-8. */
  readonly path: string[] = [];
  readonly query: string[] = [];
  contentFormat: number | undefined = undefined;
  accept: number | undefined = undefined;
  /** The request's Observe option (undefined: none). */
  observe: number | undefined = undefined;
  /** The Block1 / Block2 option values as received. */
  block1: Buffer | undefined = undefined;
  block2: Buffer | undefined = undefined;
  size1: number | undefined = undefined;
  /** Request-Tag (RFC 9175): tells concurrent Block1 uploads to the same resource apart. */
  requestTag: Buffer | undefined = undefined;
  /** The first critical option we do not support (its number), 0 none. */
  badCritical = 0;
  /** Proxy-Uri or Proxy-Scheme present (we are no proxy). */
  proxy = false;
  constructor(
    private readonly owner: SeparateResponseTimer,
    readonly entry: InEntry,
    readonly peer: Peer,
    readonly token: Buffer,
    /** The request's code byte (its method). */
    readonly code: number,
  ) {}
  onTimer(): void {
    this.owner.onSeparateTimer(this);
  }
}

/** Reads a request's options into its context, in one pass. */
export function readRequestOptions(c: InCtx, options: ParsedPacket['options']): void {
  for (let i = 0; i < options.length; i++) {
    const o = options[i];
    switch (o.name) {
      case 'Uri-Path':
        c.path.push(o.value.toString());
        break;
      case 'Uri-Query':
        c.query.push(o.value.toString());
        break;
      case 'Content-Format':
        // elective: a value over 2 bytes is an unrecognised option (RFC 7252 §5.4.3), ignored
        c.contentFormat = decodeFormatOption(o.value);
        break;
      case 'Accept':
        // critical: a value over 2 bytes is an unrecognised critical option, refused with 4.02
        c.accept = decodeFormatOption(o.value);
        if (c.accept === undefined && c.badCritical === 0) c.badCritical = OptionNumber.Accept;
        break;
      case 'Observe':
        c.observe = decodeUint(o.value);
        break;
      case 'Block1':
        c.block1 = o.value;
        break;
      case 'Block2':
        c.block2 = o.value;
        break;
      case 'Size1':
        c.size1 = decodeUint(o.value);
        break;
      case 'Proxy-Uri':
      case 'Proxy-Scheme':
        c.proxy = true;
        break;
      case 'If-Match':
      case 'Uri-Host':
      case 'If-None-Match':
      case 'Uri-Port':
        break; // critical, understood (left to the handler)
      default:
        otherOption(c, o);
    }
  }
}

/** An option coap-packet has no name for, or one we do not act on: Request-Tag, or a critical one we refuse. */
function otherOption(c: InCtx, o: ParsedPacket['options'][number]): void {
  let n: number;
  const name = o.name;
  if (typeof name === 'number') n = name;
  else {
    const known = OptionNumbers[name];
    if (known !== undefined) n = known;
    else {
      n = Number(name);
      (o as CoapOption).name = n;
    }
  }
  if (n === OptionNumber.RequestTag)
    c.requestTag = o.value; // Request-Tag (RFC 9175), unnamed in coap-packet
  else if ((n & 1) === 1 && c.badCritical === 0) c.badCritical = n; // OSCORE, Q-Block, unknown critical
}
