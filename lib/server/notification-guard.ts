/**
 * A guard on each observation's notifications, on the hot path: a few numbers per observation, a timer only while
 * it coalesces. Notifications arriving faster than the observation's pmin (or than a ceiling when its pmin is not
 * known) are coalesced: after a small burst, at most one goes on per interval, the latest one, at the end of the
 * interval; it says how many notifications it stands for, so nothing is dropped unsaid. A device that keeps flooding
 * one observation (more notifications a second than a limit, for several seconds in a row) has it cancelled.
 */
import type { IncomingResponse } from '../coap/types';

export interface NotificationGuardOptions {
  /** Notifications a second one observation passes on when its pmin is not known; faster ones are coalesced. 0 = no ceiling. */
  maxNotificationsPerSecond: number;
  /** Notifications passed on at once before coalescing starts (a device sending what it stored while offline). */
  notificationBurst: number;
  /** An observation that receives more notifications a second than this ... */
  floodNotificationsPerSecond: number;
  /** ... for this many seconds in a row is cancelled. 0 = never. */
  floodSeconds: number;
}

/**
 * Kept on each observation: the observation itself is one (its fields inline; a separate state object would cost
 * each observation another 32 bytes: bench/heap-per-device.ts). The guard works on any GuardState.
 */
export interface GuardState {
  /** ms one notification's turn lasts: the pmin, or the ceiling's interval; 0 = not coalesced. */
  intervalMs: number;
  /** Notifications that may go on at once now (a token bucket of `notificationBurst`). */
  tokens: number;
  /** When the tokens were last counted (the guard's clock, ms). */
  at: number;
  /** The current one-second window of arrivals, for flood detection. */
  windowStart: number;
  windowCount: number;
  /** Consecutive windows over the flood limit. */
  floodWindows: number;
  /** Present while notifications are being coalesced. */
  coalescing: Coalescing | undefined;
}

interface Coalescing {
  /** The latest notification held, to go on at the next turn. */
  pending: IncomingResponse | undefined;
  /** Notifications the held one stands for (itself included). */
  folded: number;
  timer: NodeJS.Timeout | undefined;
}

export interface GuardHandlers<T extends GuardState> {
  /** A notification goes on; `folded` notifications arrived since the previous one that went on (itself included). */
  pass(entry: T, notification: IncomingResponse, folded: number): void;
  /** Coalescing started on this observation (once per episode, not per notification). */
  coalescing(entry: T, intervalMs: number): void;
  /** The device flooded this observation past the limit: the caller cancels it. */
  flood(entry: T, perSecond: number): void;
}

export class NotificationGuard<T extends GuardState> {
  private readonly ceilingIntervalMs: number;
  private readonly burst: number;

  constructor(
    readonly options: NotificationGuardOptions,
    private readonly handlers: GuardHandlers<T>,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.ceilingIntervalMs = options.maxNotificationsPerSecond > 0 ? 1000 / options.maxNotificationsPerSecond : 0;
    this.burst = Math.max(1, options.notificationBurst);
  }

  /** A fresh state for an observation whose pmin is `pminSeconds` (undefined or 0: not known). */
  state(pminSeconds?: number): GuardState {
    const state: GuardState = {
      intervalMs: 0,
      tokens: 0,
      at: 0,
      windowStart: 0,
      windowCount: 0,
      floodWindows: 0,
      coalescing: undefined,
    };
    return this.reset(state, pminSeconds);
  }

  /** Makes `target`'s guard fields those of a fresh state (an observation that holds them inline); returns it. */
  reset<S extends GuardState>(target: S, pminSeconds?: number): S {
    target.intervalMs = this.intervalFor(pminSeconds);
    target.tokens = this.burst;
    target.at = this.now();
    target.windowStart = 0;
    target.windowCount = 0;
    target.floodWindows = 0;
    target.coalescing = undefined;
    return target;
  }

  /** The observation's pmin changed (Write-Attributes). */
  setMinPeriod(entry: T, pminSeconds: number | undefined): void {
    entry.intervalMs = this.intervalFor(pminSeconds);
    const coalescing = entry.coalescing;
    if (coalescing === undefined) return;
    // Nothing is coalesced any more: what is held goes on now, before the next notification passes (not after it).
    if (entry.intervalMs === 0) {
      this.flush(entry);
      return;
    }
    // The next turn follows the new interval: a shorter pmin must not keep a value held for the old one.
    if (coalescing.timer !== undefined) {
      clearTimeout(coalescing.timer);
      this.arm(entry, coalescing, this.now());
    }
  }

  /** A notification arrived for `entry`: it goes on now, is held to go on later, or ends the observation (flood). */
  admit(entry: T, notification: IncomingResponse): void {
    const now = this.now();
    if (this.options.floodSeconds > 0) {
      const elapsed = now - entry.windowStart;
      if (elapsed >= 1000) {
        // Only windows that follow each other count as a sustained flood.
        const closed = entry.windowCount;
        entry.floodWindows =
          elapsed < 2000 && closed > this.options.floodNotificationsPerSecond ? entry.floodWindows + 1 : 0;
        entry.windowStart = now;
        entry.windowCount = 0;
        if (entry.floodWindows >= this.options.floodSeconds) {
          this.release(entry);
          this.handlers.flood(entry, closed);
          return;
        }
      }
      entry.windowCount++;
    }
    if (entry.intervalMs === 0) {
      this.handlers.pass(entry, notification, 1);
      return;
    }
    let coalescing = entry.coalescing;
    if (coalescing === undefined) {
      this.refill(entry, now);
      if (entry.tokens >= 1) {
        entry.tokens -= 1;
        this.handlers.pass(entry, notification, 1);
        return;
      }
      entry.coalescing = coalescing = { pending: undefined, folded: 0, timer: undefined };
      this.handlers.coalescing(entry, entry.intervalMs);
    }
    // While coalescing every notification waits for the next turn: the latest one held stands for all of them.
    coalescing.pending = notification;
    coalescing.folded++;
    if (coalescing.timer === undefined) this.arm(entry, coalescing, now);
  }

  /** What is held goes on now (before a final notification: the device ended the observation). */
  flush(entry: T): void {
    const coalescing = entry.coalescing;
    if (coalescing === undefined) return;
    this.release(entry);
    if (coalescing.pending !== undefined) this.handlers.pass(entry, coalescing.pending, coalescing.folded);
  }

  /** The observation ended: its timer stops and what is held is dropped with it. */
  release(entry: T): void {
    const coalescing = entry.coalescing;
    if (coalescing === undefined) return;
    clearTimeout(coalescing.timer);
    entry.coalescing = undefined;
  }

  private arm(entry: T, coalescing: Coalescing, now: number): void {
    this.refill(entry, now);
    const waitMs = entry.tokens >= 1 ? 0 : (1 - entry.tokens) * entry.intervalMs;
    coalescing.timer = setTimeout(() => this.turn(entry, coalescing), Math.ceil(waitMs));
    coalescing.timer.unref();
  }

  /** A turn came: the held notification goes on, and the next turn is awaited while the device goes on. */
  private turn(entry: T, coalescing: Coalescing): void {
    if (entry.coalescing !== coalescing) return;
    coalescing.timer = undefined;
    const pending = coalescing.pending;
    if (pending === undefined) {
      // A whole turn without notifications: the device calmed down.
      entry.coalescing = undefined;
      return;
    }
    // The turn takes the whole bucket: the next one is a full interval away however late this timer fired.
    const now = this.now();
    entry.tokens = 0;
    entry.at = now;
    const folded = coalescing.folded;
    coalescing.pending = undefined;
    coalescing.folded = 0;
    this.arm(entry, coalescing, now);
    this.handlers.pass(entry, pending, folded);
  }

  private refill(guard: GuardState, now: number): void {
    if (guard.intervalMs === 0) {
      guard.tokens = this.burst;
      guard.at = now;
      return;
    }
    const tokens = guard.tokens + (now - guard.at) / guard.intervalMs;
    guard.tokens = tokens < this.burst ? tokens : this.burst;
    guard.at = now;
  }

  private intervalFor(pminSeconds: number | undefined): number {
    return pminSeconds !== undefined && pminSeconds > 0 ? pminSeconds * 1000 : this.ceilingIntervalMs;
  }
}
