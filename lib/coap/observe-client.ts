/**
 * The observer side of Observe (RFC 7641 §3), when we observe a peer's resource: receiving notifications (ACK,
 * the §3.4 ordering rule, fetching the rest of a Block2 notification, the final one ending the observation),
 * notifications nobody asked for (adopted or RST), cancelling (active with Observe=1, or passive), and observations
 * restored from elsewhere. Observations are established by Observe registrations in the exchange layer.
 */
import type { Peer, PeerAddress } from '../transport/types';
import { flatString, toPeer } from '../transport/peer';
import { decodeBlock, decodeUint, type BlockOption, type ParsedPacket } from './codec';
import type { EndpointContext } from './context';
import type { Exchanges } from './exchange';
import type { MessageLayer } from './message';
import type { ObservationTable } from './observation-table';
import { Kind, type Observation } from './peer';
import { toResponse } from './response';
import {
  isNotificationListener,
  type IncomingResponse,
  type NotificationListener,
  type ObservationHandle,
  type OutgoingRequest,
  type UnknownNotificationHandler,
} from './types';

/** 2^23: the Observe sequence window of RFC 7641 §3.4. */
const OBS_WINDOW = 1 << 23;
/** RFC 7641 §3.4: a notification more than 128 s after the last one is fresh whatever its number. */
const OBS_FRESH_MS = 128_000;

export class Observer {
  unknownHandler: UnknownNotificationHandler | undefined = undefined;

  constructor(
    private readonly ctx: EndpointContext,
    private readonly messages: MessageLayer,
    private readonly exchanges: Exchanges,
    private readonly observations: ObservationTable,
  ) {}

  /** The live observation holding `token` with `peer`, if any. */
  get(peer: PeerAddress, token: Buffer): ObservationHandle | undefined {
    return this.observations.get(toPeer(peer).key + '|' + token.toString('hex'));
  }

  /** See `CoapEndpoint.restoreObservation`. */
  restore(
    peer: PeerAddress,
    token: Buffer,
    request: OutgoingRequest | undefined,
    listener: NotificationListener,
    lastSequence?: number,
  ): ObservationHandle {
    const p = toPeer(peer);
    const key = p.key + '|' + token.toString('hex');
    void this.observations.get(key)?.cancel('passive');
    this.observations.forgetCancelled(key);
    const obs = this.observations.create(p, flatString(key), listener, request);
    if (lastSequence !== undefined) {
      obs.lastSeq = lastSequence;
      obs.lastTime = performance.now();
    }
    if (!this.ctx.closed) this.observations.add(obs);
    else obs.active = false;
    return obs;
  }

  /** See `ObservationHandle.cancel`. */
  cancel(obs: Observation, mode: 'active' | 'passive'): Promise<IncomingResponse | void> {
    if (!obs.active) return Promise.resolve();
    this.exchanges.passiveCancel(obs);
    if (mode === 'passive' || obs.request === undefined || this.ctx.closed) return Promise.resolve();
    const r = obs.request;
    // A FETCH observation (Observe-Composite) is cancelled with the same FETCH and its body.
    const isFetch = r.method === 'FETCH';
    const cancel: OutgoingRequest = {
      method: isFetch ? 'FETCH' : 'GET',
      pathSegments: r.pathSegments,
      query: r.query,
      accept: r.accept,
      contentFormat: isFetch ? r.contentFormat : undefined,
      payload: isFetch ? r.payload : undefined,
      options: r.options,
      confirmable: r.confirmable,
      observe: 1,
      token: obs.token,
    };
    return this.exchanges.start(obs.peer, cancel, Kind.Request, undefined) as Promise<IncomingResponse>;
  }

  /**
   * A response (CON or NON) that no request of ours awaits: a notification of a live observation, one nobody asked
   * for (the unknown-notification handler may adopt it), or else something to RST.
   */
  receive(
    msg: ParsedPacket,
    tkey: string,
    dkey: string,
    code: number,
    peer: Peer,
    mid: number,
    con: boolean,
    now: number,
  ): void {
    const obs = this.observations.get(tkey);
    if (obs !== undefined) {
      if (con) {
        const final = code >> 5 !== 2 || !hasOption(msg, 'Observe');
        if (final) this.messages.ackAndRemember(dkey, peer, mid, now);
        else this.messages.sendAck(mid, peer); // duplicates are caught by the sequence rule
      }
      this.onNotification(obs, msg, code, peer, now);
      return;
    }
    const unknown = this.unknownHandler;
    if (!this.observations.wasCancelled(tkey) && unknown !== undefined && hasOption(msg, 'Observe')) {
      if (this.adopt(unknown, msg, tkey, code, peer, mid, con, now)) return;
    }
    // unknown token (late response, cancelled or unwanted observation): reject
    this.ctx.st.dropped++;
    this.messages.sendRst(mid, peer);
  }

  /** Offers a notification of no live observation to the unknown-notification handler; true when adopted. */
  private adopt(
    unknown: UnknownNotificationHandler,
    msg: ParsedPacket,
    tkey: string,
    code: number,
    peer: Peer,
    mid: number,
    con: boolean,
    now: number,
  ): boolean {
    const resp = toResponse(msg, code, msg.payload, peer, msg.token, 0, false);
    let listener: NotificationListener | undefined;
    try {
      listener = unknown(resp);
    } catch (err) {
      this.ctx.reportError(err);
    }
    if (!isNotificationListener(listener)) return false;
    if (con) this.messages.sendAck(mid, peer);
    const adopted = this.observations.create(peer, flatString(tkey), listener, undefined);
    const seq = resp.observe!;
    if (code >> 5 === 2) {
      adopted.lastSeq = seq;
      adopted.lastTime = now;
      this.observations.add(adopted);
    } else adopted.active = false;
    this.observations.deliver(adopted, resp);
    return true;
  }

  private onNotification(obs: Observation, msg: ParsedPacket, code: number, peer: Peer, now: number): void {
    this.ctx.st.notificationsIn++;
    const options = msg.options;
    let observe: number | undefined;
    let b2: BlockOption | undefined;
    let etag: Buffer | undefined;
    for (let i = 0; i < options.length; i++) {
      const o = options[i];
      if (o.name === 'Observe') observe = decodeUint(o.value);
      else if (o.name === 'Block2') b2 = decodeBlock(o.value);
      else if (o.name === 'ETag') etag = o.value;
    }
    if (code >> 5 !== 2 || observe === undefined) {
      // the observation ends with this notification
      this.exchanges.dropObservation(obs);
      this.observations.deliver(obs, toResponse(msg, code, msg.payload, peer, msg.token, 0, false));
      return;
    }
    if (obs.lastTime !== -Infinity) {
      const v1 = obs.lastSeq;
      const fresh =
        (v1 < observe && observe - v1 < OBS_WINDOW) ||
        (v1 > observe && v1 - observe > OBS_WINDOW) ||
        now > obs.lastTime + OBS_FRESH_MS;
      if (!fresh) {
        this.ctx.st.staleNotifications++;
        return;
      }
    }
    obs.lastSeq = observe;
    obs.lastTime = now;
    obs.gen++;
    if (obs.fetch !== null) {
      const f = obs.fetch;
      obs.fetch = null;
      this.exchanges.finish(f); // superseded by this newer notification
    }
    const payload = msg.payload;
    if (b2 !== undefined && b2.more && b2.num === 0 && payload.length === b2.size && obs.request !== undefined) {
      // RFC 7959 §2.6: fetch the rest of the value with plain GETs (no Observe), then deliver it whole
      const r = obs.request;
      const req: OutgoingRequest = {
        method: 'GET',
        pathSegments: r.pathSegments,
        query: r.query,
        accept: r.accept,
        options: r.options,
        confirmable: r.confirmable,
      };
      this.exchanges.fetchNotificationRest(obs, req, msg, b2, etag, now);
      return;
    }
    this.observations.deliver(obs, toResponse(msg, code, payload, peer, msg.token, 0, false));
  }
}

function hasOption(msg: ParsedPacket, name: string): boolean {
  const o = msg.options;
  for (let i = 0; i < o.length; i++) if (o[i].name === name) return true;
  return false;
}
