/**
 * The notifier side of Observe (RFC 7641 §4), when we are the observed party: the observations we answered (for
 * Block2 notifications), sending notifications (`CoapEndpoint.notify`) CON with retransmission or NON, a newer CON
 * notification taking over from an unACKed one, and the observer's RST ending the observation.
 */
import type { Peer, PeerAddress } from '../transport/types';
import { toPeer } from '../transport/peer';
import {
  blockValue,
  codeToByte,
  encodeMessage,
  MessageType,
  OptionNumber,
  optionNumber,
  szxToSize,
  type EncOption,
} from './codec';
import { uriKey, type BlockServer } from './block-server';
import type { EndpointContext } from './context';
import type { MessageLayer, PendingMessage } from './message';
import type { InCtx } from './request-context';
import type { TimerItem } from './timers';
import { CoapRequestError, type OutgoingResponse } from './types';

/** Observations we answered (as the observed party) whose request we remember for Block2 notifications. */
const MAX_SERVED_OBSERVATIONS = 65536;
/** NON notifications remembered to recognise an RST answering one (each for EXCHANGE_LIFETIME at most). */
const MAX_RECENT_NON_NOTIFICATIONS = 4096;

function noop(): void {}

const NO_BUF = Buffer.alloc(0);

/** A CON notification (we are the observed party) retransmitted until ACKed or RST. */
export class OutNotification implements TimerItem, PendingMessage {
  timerAt = 0;
  timerIdx = -1;
  retransmits = 0;
  midKey = '';
  buf: Buffer = NO_BUF;
  /** A copy of the observation's token. */
  token: Buffer = NO_BUF;
  rto = 0;
  resolve: () => void = noop;
  reject: (err: Error) => void = noop;
  constructor(
    private readonly notifier: Notifier,
    readonly peer: Peer,
    /** `peerKey|tokenhex` of the observation. */
    readonly tokenKey: string,
  ) {}
  onTimer(now: number): void {
    this.notifier.onNotificationTimer(this, now);
  }
}

/** A NON notification we sent, remembered for a while so that an RST answering it can be reported. */
interface NonNotification extends PendingMessage {
  midKey: string;
  peer: Peer;
  token: Buffer;
  tokenKey: string;
  expires: number;
}

/** The request of an observation we answered (we are the observed party): where Block2 follow-ups come. */
interface ServedObservation {
  code: number;
  path: string[];
  query: string[];
  /** Block size the observer asked for in its registration (SZX), or ours. */
  szx: number;
}

/** Where the observer's RST of a notification is reported (the endpoint's `onNotificationReset`). */
export interface NotificationResetSink {
  onNotificationReset: (peer: Peer, token: Buffer) => void;
}

export class Notifier {
  /** `peerKey|tokenhex` -> the CON notification of that observation awaiting its ACK. */
  private readonly byToken = new Map<string, OutNotification>();
  /** `peerKey#mid` -> NON notifications sent recently, in sending order. */
  private readonly nonNotifs = new Map<string, NonNotification>();
  /** `peerKey|tokenhex` -> observations we answered, in registration order. */
  private readonly served = new Map<string, ServedObservation>();

  constructor(
    private readonly ctx: EndpointContext,
    private readonly messages: MessageLayer,
    private readonly blocks: BlockServer,
    private readonly resets: NotificationResetSink,
  ) {}

  /** CON notifications awaiting their ACK. */
  get pending(): number {
    return this.byToken.size;
  }

  /** See `CoapEndpoint.notify`. */
  notify(
    peerIn: PeerAddress,
    token: Buffer,
    response: OutgoingResponse & { observe: number },
    confirmable: boolean,
  ): Promise<void> {
    const ctx = this.ctx;
    if (ctx.closed) return Promise.reject(new CoapRequestError('endpoint closed', 'closed'));
    const peer = toPeer(peerIn);
    const tokenKey = peer.key + '|' + token.toString('hex');
    if (!confirmable) {
      const sent: NonNotification = { midKey: '', peer, token, tokenKey, expires: 0 };
      let buf: Buffer;
      try {
        buf = this.encodeNotification(peer, token, tokenKey, response, false, sent);
      } catch (err) {
        return Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
      ctx.st.notificationsOut++;
      this.rememberNonNotification(sent);
      ctx.transport.send(buf, peer);
      return Promise.resolve();
    }
    const n = new OutNotification(this, peer, tokenKey);
    try {
      n.buf = this.encodeNotification(peer, token, tokenKey, response, true, n);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    n.token = Buffer.from(token);
    ctx.st.notificationsOut++;
    return new Promise<void>((resolve, reject) => {
      n.resolve = resolve;
      n.reject = reject;
      const old = this.byToken.get(tokenKey);
      if (old !== undefined) {
        this.dropNotification(old);
        n.rto = old.rto;
        n.retransmits = old.retransmits;
        old.reject(new CoapRequestError('superseded by a newer notification', 'cancelled'));
      } else n.rto = ctx.initialRto();
      this.messages.track(n);
      this.byToken.set(tokenKey, n);
      ctx.timers.schedule(n, performance.now() + n.rto);
      ctx.transport.send(n.buf, peer);
    });
  }

  /** Encodes a notification (its message id goes to `holder.midKey`); keeps a large body for Block2. */
  private encodeNotification(
    peer: Peer,
    token: Buffer,
    tokenKey: string,
    res: OutgoingResponse & { observe: number },
    confirmable: boolean,
    holder: PendingMessage,
  ): Buffer {
    if (res === null || typeof res !== 'object') throw new TypeError('notify() needs a response');
    const code = codeToByte(res.code);
    const cls = code >> 5;
    if (cls < 2 || cls > 5 || cls === 3) throw new TypeError(`invalid notification code ${res.code}`);
    const observe = res.observe;
    if (cls === 2 && !(Number.isInteger(observe) && observe >= 0))
      throw new RangeError('a notification needs an integer Observe sequence number >= 0');
    const opts: EncOption[] = [];
    if (res.contentFormat !== undefined) opts.push({ n: OptionNumber.ContentFormat, v: res.contentFormat });
    const lp = res.locationPath;
    if (lp !== undefined) for (let i = 0; i < lp.length; i++) opts.push({ n: OptionNumber.LocationPath, v: lp[i] });
    const ro = res.options;
    if (ro !== undefined)
      for (let i = 0; i < ro.length; i++) {
        const n = optionNumber(ro[i].name);
        if (n !== OptionNumber.Observe && n !== OptionNumber.Block2 && n !== OptionNumber.Size2)
          opts.push({ n, v: ro[i].value });
      }
    const served = this.served.get(tokenKey);
    if (cls !== 2) this.served.delete(tokenKey); // the observation ends with this notification
    const seq = observe & 0xffffff;
    let payload = res.payload;
    const szx = served !== undefined ? served.szx : this.ctx.ourSzx;
    const size = szxToSize(szx);
    if (payload !== undefined && payload.length > size) {
      if (served !== undefined && cls === 2) {
        const ps = this.ctx.peers.get(peer.key);
        const key = uriKey(ps.key, served.code, served.path, served.query);
        this.blocks.keepNotificationBody(ps, key, code, opts.slice(), payload, seq);
      }
      opts.push({ n: OptionNumber.Block2, v: blockValue(0, true, szx) }, { n: OptionNumber.Size2, v: payload.length });
      payload = payload.subarray(0, size);
    }
    if (cls === 2) opts.push({ n: OptionNumber.Observe, v: seq });
    const mid = this.messages.allocMid(peer.key, holder);
    return encodeMessage(confirmable ? MessageType.CON : MessageType.NON, code, mid, token, opts, payload);
  }

  private rememberNonNotification(sent: NonNotification): void {
    const m = this.nonNotifs;
    m.delete(sent.midKey);
    if (m.size >= MAX_RECENT_NON_NOTIFICATIONS) {
      const oldest = m.keys().next().value;
      if (oldest !== undefined) m.delete(oldest);
    }
    sent.token = Buffer.from(sent.token);
    sent.expires = performance.now() + this.ctx.o.exchangeLifetimeMs;
    m.set(sent.midKey, sent);
  }

  private dropNotification(n: OutNotification): void {
    this.messages.untrack(n);
    if (this.byToken.get(n.tokenKey) === n) this.byToken.delete(n.tokenKey);
    this.ctx.timers.cancel(n);
  }

  /** The observer ACKed a CON notification. */
  onAck(n: OutNotification): void {
    this.dropNotification(n);
    n.resolve();
  }

  /** The observer answered a CON notification with RST. */
  onReset(n: OutNotification, peer: Peer): void {
    this.dropNotification(n);
    this.notificationReset(n.peer, n.token, n.tokenKey);
    n.reject(new CoapRequestError(`${peer.key} reset the notification`, 'reset'));
  }

  /** An RST that matches none of our pending messages: it may answer a recent NON notification. */
  onUnmatchedReset(midKey: string): void {
    const n = this.nonNotifs.get(midKey);
    if (n !== undefined) {
      this.nonNotifs.delete(midKey);
      this.notificationReset(n.peer, n.token, n.tokenKey);
    }
  }

  /** An RST answered a notification: the observer is gone (a pending CON one of it fails too). */
  private notificationReset(peer: Peer, token: Buffer, tokenKey: string): void {
    this.ctx.st.notificationResets++;
    this.served.delete(tokenKey);
    try {
      this.resets.onNotificationReset(peer, token);
    } catch (err) {
      this.ctx.reportError(err);
    }
    const pending = this.byToken.get(tokenKey);
    if (pending !== undefined) {
      this.dropNotification(pending);
      pending.reject(new CoapRequestError(`${peer.key} reset the observation`, 'reset'));
    }
  }

  /** @internal timer callback */
  onNotificationTimer(n: OutNotification, now: number): void {
    if (this.messages.awaiting(n.midKey) !== n) return;
    const ctx = this.ctx;
    if (n.retransmits >= ctx.o.maxRetransmit) {
      this.dropNotification(n);
      this.served.delete(n.tokenKey); // RFC 7641 §4.5: the observer is no longer interested / reachable
      n.reject(
        new CoapRequestError(
          `no ACK from ${n.peer.key} for a notification after ${n.retransmits} retransmissions`,
          'timeout',
        ),
      );
      return;
    }
    n.retransmits++;
    ctx.st.retransmissions++;
    n.rto *= 2;
    ctx.timers.schedule(n, now + n.rto);
    ctx.transport.send(n.buf, n.peer);
  }

  /** Remembers (or forgets) the request of an observation we answer (`res` to `c`), for Block2 notifications. */
  trackServedObservation(c: InCtx, code: number, res: OutgoingResponse): void {
    const key = c.entry.ps.key + '|' + c.token.toString('hex');
    this.served.delete(key);
    if (c.observe !== 0 || code >> 5 !== 2) return;
    const ro = res.options;
    let observed = false;
    if (ro !== undefined)
      for (let i = 0; i < ro.length && !observed; i++) observed = optionNumber(ro[i].name) === OptionNumber.Observe;
    if (!observed) return;
    if (this.served.size >= MAX_SERVED_OBSERVATIONS) {
      const oldest = this.served.keys().next().value;
      if (oldest !== undefined) this.served.delete(oldest);
    }
    const ourSzx = this.ctx.ourSzx;
    this.served.set(key, {
      code: c.code,
      path: c.path,
      query: c.query,
      szx: c.b2szx >= 0 && c.b2szx < ourSzx ? c.b2szx : ourSzx,
    });
  }

  sweep(now: number): void {
    for (const [k, n] of this.nonNotifs) {
      if (n.expires > now) break;
      this.nonNotifs.delete(k);
    }
  }

  /** At close: pending CON notifications reject with CoapRequestError 'closed'; everything is forgotten. */
  close(): void {
    const notifs = Array.from(this.byToken.values());
    this.byToken.clear();
    for (const n of notifs) n.reject(new CoapRequestError('endpoint closed', 'closed'));
    this.nonNotifs.clear();
    this.served.clear();
  }
}
