/**
 * Responses to our requests (piggybacked or separate, matched by the endpoint by message id or token): taking
 * Block1/Block2 steps, completing the exchange (resolving it, establishing the observation of an Observe
 * registration, delivering a notification's fetched body), and the public form of a received response.
 */
import type { Peer } from '../transport/types';
import { flatString } from '../transport/peer';
import {
  CodeByte,
  codeFromByte,
  decodeBlock,
  decodeFormatOption,
  decodeUint,
  normaliseParsedOptions,
  type BlockOption,
  type ParsedPacket,
} from './codec';
import { nextBlock1, takeBlock2 } from './block-client';
import type { EndpointContext } from './context';
import type { Exchanges } from './exchange';
import type { MessageLayer } from './message';
import type { ObservationTable } from './observation-table';
import { Kind, type Observation, type OutRequest } from './peer';
import type { IncomingResponse, ObservationHandle } from './types';

export class ResponseHandler {
  constructor(
    private readonly ctx: EndpointContext,
    private readonly messages: MessageLayer,
    private readonly exchanges: Exchanges,
    private readonly observations: ObservationTable,
  ) {}

  /** A response to one of our requests (piggybacked or separate). */
  handle(x: OutRequest, msg: ParsedPacket, code: number, peer: Peer, now: number): void {
    this.ctx.st.responsesIn++;
    if (x.midKey !== null) {
      this.messages.drop(x.midKey);
      x.midKey = null;
    }
    x.acked = true;
    const options = msg.options;
    let b1: BlockOption | undefined;
    let b2: BlockOption | undefined;
    let badBlock = false;
    let observe: number | undefined;
    let etag: Buffer | undefined;
    for (let i = 0; i < options.length; i++) {
      const o = options[i];
      switch (o.name) {
        case 'Block1':
          b1 = decodeBlock(o.value);
          break;
        case 'Block2':
          b2 = decodeBlock(o.value);
          if (b2 === undefined) badBlock = true;
          break;
        case 'Observe':
          observe = decodeUint(o.value);
          break;
        case 'ETag':
          etag = o.value;
          break;
      }
    }
    const cls = code >> 5;
    // ---- Block1 upload in progress
    if (x.phase === 0 && x.body !== null && nextBlock1(x, code, b1)) {
      const onProgress = x.req.onProgress;
      if (onProgress !== undefined && code === CodeByte.Continue)
        this.ctx.progressOf(onProgress, x.b1off, x.body.length);
      this.exchanges.continueExchange(x, now);
      return;
    }
    let payload = msg.payload;
    // ---- Block2 download
    if (badBlock && cls === 2) {
      this.exchanges.fail(x, 'block', 'malformed Block2 option in response');
      return;
    }
    if (b2 !== undefined && cls === 2) {
      const body = takeBlock2(x, msg, b2, etag, now, this.ctx.o.maxResponseBodySize);
      if (typeof body === 'string') {
        this.exchanges.fail(x, 'block', body);
        return;
      }
      if (body === undefined) {
        if (x.first === msg && x.kind === Kind.Observe && observe !== undefined) this.establish(x, observe, now);
        x.phase = 1;
        this.exchanges.rekey(x);
        this.exchanges.continueExchange(x, now);
        return;
      }
      payload = body;
    }
    this.complete(x, msg, code, payload, peer, now);
  }

  /** An Observe registration got a 2.xx with Observe: its observation is live from now on. */
  private establish(x: OutRequest, seq: number, now: number): Observation {
    let obs = x.obs;
    if (obs === null) {
      obs = this.observations.create(
        x.peer,
        flatString(x.peer.key + '|' + x.origToken.toString('hex')), // kept while observed: no rope
        x.listener!,
        x.req,
      );
      x.obs = obs;
      this.observations.add(obs);
    }
    obs.lastSeq = seq;
    obs.lastTime = now;
    return obs;
  }

  private complete(x: OutRequest, last: ParsedPacket, code: number, payload: Buffer, peer: Peer, now: number): void {
    const first = x.first ?? last;
    const resp = toResponse(first, code, payload, peer, x.origToken, now - x.started, x.first !== null);
    this.exchanges.finish(x);
    if (x.kind === Kind.Request) {
      (x.resolve as (v: IncomingResponse) => void)(resp);
    } else if (x.kind === Kind.Observe) {
      let obs: Observation | undefined;
      if (code >> 5 !== 2) {
        if (x.obs !== null) this.exchanges.passiveCancel(x.obs);
      } else if (x.obs !== null) {
        if (x.obs.active) obs = x.obs; // created at the first block; may have seen newer notifications since
      } else if (resp.observe !== undefined) obs = this.establish(x, resp.observe, now);
      (x.resolve as (v: { response: IncomingResponse; observation?: ObservationHandle }) => void)(
        obs !== undefined ? { response: resp, observation: obs } : { response: resp },
      );
    } else {
      const obs = x.obs!;
      if (obs.fetch === x) obs.fetch = null;
      if (obs.active && obs.gen === x.gen) this.observations.deliver(obs, resp);
    }
  }
}

/** The public form of a response (or notification) we received. */
export function toResponse(
  msg: ParsedPacket,
  code: number,
  payload: Buffer,
  peer: Peer,
  token: Buffer,
  rttMs: number,
  stripBlock2: boolean,
): IncomingResponse {
  let options = normaliseParsedOptions(msg.options);
  let contentFormat: number | undefined;
  let observe: number | undefined;
  for (let i = 0; i < options.length; i++) {
    const n = options[i].name;
    if (n === 'Content-Format')
      contentFormat = decodeFormatOption(options[i].value); // over 2 bytes: ignored
    else if (n === 'Observe') observe = decodeUint(options[i].value);
  }
  if (stripBlock2) options = options.filter((o) => o.name !== 'Block2' && o.name !== 'Size2');
  return { peer, code: codeFromByte(code), contentFormat, observe, payload, options, token, rttMs };
}
