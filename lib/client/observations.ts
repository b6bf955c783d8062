/**
 * The device side of LwM2M Information Reporting: the observations a server holds on us and when each
 * one notifies (pmin / pmax / gt / lt / st, epmin / epmax in 1.1, edge / con in 1.2).
 *
 * Rules (LwM2M Core §5.1.2, RFC 7641):
 * - a change of an observed value (or of anything below an observed object / instance) is evaluated
 *   at most once per epmin; a resource with gt / lt / st qualifies only when it crosses gt or lt or has
 *   moved by st since the last notification; edge qualifies on the rising (1) or falling (0) edge;
 *   without these any change qualifies;
 * - a qualifying change is sent at once, or when pmin has passed since the last notification;
 * - pmax forces a notification when nothing was sent for pmax seconds; epmax forces an evaluation.
 * Timing uses one timer per observation, armed at the next instant anything can happen.
 */
import type { LwM2mPath } from '../model/path';
import type { LwM2mNode } from '../model/types';
import type { Peer } from '../transport/types';
import type { ClientAttributes } from './attributes';
import { numericValue } from './object-tree';

/** The key of an observation: the observing peer and the token of its Observe request. */
export function observationKey(peerKey: string, token: Buffer): string {
  return peerKey + '|' + token.toString('hex');
}

export class Observation {
  lastSentAt: number;
  lastEvalAt: number;
  lastSentNumeric: number | undefined;
  lastEvalNumeric: number | undefined;
  /** What the value looked like at the last evaluation (to tell a periodic epmax evaluation a change). */
  lastEvalSignature: string;
  /** A qualifying change (or pmax) owes a notification. */
  pending = false;
  /** A change arrived within epmin of the last evaluation: evaluate later. */
  evalPending = false;
  /** A CON notification is waiting for its ACK. */
  inFlight = false;
  timer: NodeJS.Timeout | undefined;
  timerAt = Infinity;
  notifications = 0;
  active = true;

  constructor(
    readonly key: string,
    readonly peer: Peer,
    readonly token: Buffer,
    readonly path: LwM2mPath,
    /** Content format of the notifications (the Observe's Accept, or our default). */
    readonly format: number,
    initial: LwM2mNode,
    now: number,
  ) {
    this.lastSentAt = now;
    this.lastEvalAt = now;
    this.lastSentNumeric = numericValue(initial);
    this.lastEvalNumeric = this.lastSentNumeric;
    this.lastEvalSignature = signature(initial);
  }
}

export interface ObservationHooks {
  /** The attributes governing a path now. */
  attributes(path: LwM2mPath): ClientAttributes;
  /** The current node at a path; throws when it is gone. */
  read(path: LwM2mPath): LwM2mNode;
  /**
   * Transmits a notification of `node` (undefined: the path is gone, send an error and end). Returns a
   * promise that settles when a CON one is ACKed (rejects when the observer is gone), or at once.
   */
  send(observation: Observation, node: LwM2mNode | undefined, confirmable: boolean): Promise<void>;
  /** Whether notifications are CON by default. */
  confirmableByDefault(): boolean;
  /** The observation ended (cancelled, reset, timed out, path gone). */
  ended(observation: Observation, reason: string): void;
  now(): number;
}

export class ObservationRegistry {
  private readonly byKey = new Map<string, Observation>();

  constructor(private readonly hooks: ObservationHooks) {}

  get size(): number {
    return this.byKey.size;
  }

  list(): Observation[] {
    return [...this.byKey.values()];
  }

  get(key: string): Observation | undefined {
    return this.byKey.get(key);
  }

  /** Starts (or restarts, for the same peer and token) an observation; the first response was `initial`. */
  add(observation: Observation): void {
    const old = this.byKey.get(observation.key);
    if (old !== undefined) this.stop(old);
    this.byKey.set(observation.key, observation);
    this.schedule(observation);
  }

  /** Ends an observation (cancel, RST); returns it if it existed. */
  remove(key: string, reason: string): Observation | undefined {
    const observation = this.byKey.get(key);
    if (observation === undefined) return undefined;
    this.end(observation, reason);
    return observation;
  }

  /** Ends every observation (de-registration, reboot, stop). */
  clear(reason: string): void {
    for (const observation of [...this.byKey.values()]) this.end(observation, reason);
  }

  /** Something at `path` changed: every observation on it, above it or below it evaluates. */
  changed(path: LwM2mPath): void {
    if (this.byKey.size === 0) return;
    for (const observation of this.byKey.values()) {
      if (observation.path.contains(path) || path.contains(observation.path)) this.onChange(observation);
    }
  }

  /** Attributes changed: timers follow the new ones. */
  attributesChanged(): void {
    for (const observation of this.byKey.values()) this.schedule(observation);
  }

  private end(observation: Observation, reason: string): void {
    this.stop(observation);
    if (this.byKey.get(observation.key) === observation) this.byKey.delete(observation.key);
    this.hooks.ended(observation, reason);
  }

  private stop(observation: Observation): void {
    observation.active = false;
    if (observation.timer !== undefined) clearTimeout(observation.timer);
    observation.timer = undefined;
    observation.timerAt = Infinity;
  }

  private onChange(observation: Observation): void {
    const attrs = this.hooks.attributes(observation.path);
    const now = this.hooks.now();
    if (attrs.epmin !== undefined && attrs.epmin > 0 && now - observation.lastEvalAt < attrs.epmin * 1000) {
      observation.evalPending = true;
      this.schedule(observation, attrs);
      return;
    }
    if (!this.evaluate(observation, attrs, now, true)) return;
    this.trySend(observation, attrs, now);
  }

  /**
   * Reads the value and decides whether it qualifies; false when the observation ended. `changed`:
   * the device said the value changed; otherwise (a periodic epmax evaluation) it is compared.
   */
  private evaluate(observation: Observation, attrs: ClientAttributes, now: number, changed: boolean): boolean {
    observation.lastEvalAt = now;
    observation.evalPending = false;
    let node: LwM2mNode;
    try {
      node = this.hooks.read(observation.path);
    } catch {
      this.sendGone(observation);
      return false;
    }
    const value = numericValue(node);
    const sig = signature(node);
    if ((changed || sig !== observation.lastEvalSignature) && qualifies(observation, attrs, value)) {
      observation.pending = true;
    }
    observation.lastEvalNumeric = value;
    observation.lastEvalSignature = sig;
    return true;
  }

  private trySend(observation: Observation, attrs: ClientAttributes, now: number): void {
    if (!observation.active) return;
    if (observation.pending && !observation.inFlight) {
      const pmin = (attrs.pmin ?? 0) * 1000;
      if (now - observation.lastSentAt >= pmin) {
        this.sendNow(observation, attrs, now);
        return;
      }
    }
    this.schedule(observation, attrs);
  }

  private sendNow(observation: Observation, attrs: ClientAttributes, now: number): void {
    let node: LwM2mNode;
    try {
      node = this.hooks.read(observation.path);
    } catch {
      this.sendGone(observation);
      return;
    }
    observation.pending = false;
    observation.lastSentAt = now;
    observation.lastSentNumeric = numericValue(node);
    observation.notifications++;
    const confirmable = attrs.con !== undefined ? attrs.con === 1 : this.hooks.confirmableByDefault();
    if (confirmable) observation.inFlight = true;
    this.hooks.send(observation, node, confirmable).then(
      () => {
        observation.inFlight = false;
        if (observation.active) this.trySend(observation, this.hooks.attributes(observation.path), this.hooks.now());
      },
      (err: Error) => {
        observation.inFlight = false;
        if (observation.active) this.remove(observation.key, `notification failed: ${err.message}`);
      },
    );
    this.schedule(observation, attrs);
  }

  private sendGone(observation: Observation): void {
    this.hooks.send(observation, undefined, false).catch(() => undefined);
    this.remove(observation.key, `${observation.path} no longer exists`);
  }

  private schedule(observation: Observation, attrs = this.hooks.attributes(observation.path)): void {
    if (!observation.active) return;
    let next = Infinity;
    const pmin = (attrs.pmin ?? 0) * 1000;
    if (observation.pending && !observation.inFlight) next = observation.lastSentAt + pmin;
    const pmax = (attrs.pmax ?? 0) * 1000;
    if (pmax > 0 && pmax >= pmin) next = Math.min(next, observation.lastSentAt + pmax);
    const epmin = (attrs.epmin ?? 0) * 1000;
    if (observation.evalPending) next = Math.min(next, observation.lastEvalAt + epmin);
    const epmax = (attrs.epmax ?? 0) * 1000;
    if (epmax > 0 && epmax >= epmin) next = Math.min(next, observation.lastEvalAt + epmax);
    if (next === observation.timerAt && observation.timer !== undefined) return;
    if (observation.timer !== undefined) clearTimeout(observation.timer);
    observation.timer = undefined;
    observation.timerAt = next;
    if (next === Infinity) return;
    const delay = Math.max(0, Math.ceil(next - this.hooks.now()));
    observation.timer = setTimeout(() => this.onTimer(observation), Math.min(delay, 0x7fffffff));
  }

  private onTimer(observation: Observation): void {
    observation.timer = undefined;
    observation.timerAt = Infinity;
    if (!observation.active) return;
    const attrs = this.hooks.attributes(observation.path);
    const now = this.hooks.now() + 1; // timers may fire a hair early
    const epmin = (attrs.epmin ?? 0) * 1000;
    const epmax = (attrs.epmax ?? 0) * 1000;
    const evalDue =
      (observation.evalPending && now >= observation.lastEvalAt + epmin) ||
      (epmax > 0 && now >= observation.lastEvalAt + epmax);
    if (evalDue && !this.evaluate(observation, attrs, now, observation.evalPending)) return;
    const pmin = (attrs.pmin ?? 0) * 1000;
    const pmax = (attrs.pmax ?? 0) * 1000;
    if (pmax > 0 && pmax >= pmin && now >= observation.lastSentAt + pmax) observation.pending = true;
    this.trySend(observation, attrs, now);
  }
}

/** Whether a new value qualifies for a notification under gt / lt / st / edge. */
function qualifies(observation: Observation, attrs: ClientAttributes, value: number | undefined): boolean {
  if (observation.path.level < 3 || value === undefined) return true;
  const { gt, lt, st, edge } = attrs;
  if (edge !== undefined) {
    const before = observation.lastEvalNumeric;
    if (before === undefined || before === value) return false;
    return edge === 1 ? value === 1 : value === 0;
  }
  if (gt === undefined && lt === undefined && st === undefined) return true;
  const before = observation.lastEvalNumeric;
  if (gt !== undefined && before !== undefined && before > gt !== value > gt) return true;
  if (lt !== undefined && before !== undefined && before < lt !== value < lt) return true;
  const sent = observation.lastSentNumeric;
  if (st !== undefined && (sent === undefined || Math.abs(value - sent) >= st)) return true;
  return false;
}

/** A cheap comparable form of a node's values. */
function signature(node: LwM2mNode): string {
  return JSON.stringify(node, (_key, value: unknown) => {
    if (value instanceof Map) return [...value.entries()];
    if (typeof value === 'bigint') return value.toString() + 'n';
    if (value instanceof Date) return value.getTime();
    if (typeof value === 'object' && value !== null && (value as { type?: unknown }).type === 'Buffer') {
      return Buffer.from((value as { data: number[] }).data).toString('hex');
    }
    return value;
  });
}
