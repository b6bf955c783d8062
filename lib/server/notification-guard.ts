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

/** Kept on each observation. */
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

/**
 * What the guard works on: a GuardState, which the observation itself is (its fields inline: a separate state
 * object would cost each observation another 32 bytes).
 */
export type Guarded = GuardState;

export interface GuardHandlers<T extends Guarded> {
  /** A notification goes on; `folded` notifications arrived since the previous one that went on (itself included). */
  pass(entry: T, notification: IncomingResponse, folded: number): void;
  /** Coalescing started on this observation (once per episode, not per notification). */
  coalescing(entry: T, intervalMs: number): void;
  /** The device flooded this observation past the limit: the caller cancels it. */
  flood(entry: T, perSecond: number): void;
}

export class NotificationGuard<T extends Guarded> {
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
    return {
      intervalMs: this.intervalFor(pminSeconds),
      tokens: this.burst,
      at: this.now(),
      windowStart: 0,
      windowCount: 0,
      floodWindows: 0,
      coalescing: undefined,
    };
  }

  /** The observation's pmin changed (Write-Attributes). */
  setMinPeriod(entry: T, pminSeconds: number | undefined): void {
    const guard: GuardState = entry;
    guard.intervalMs = this.intervalFor(pminSeconds);
    const coalescing = guard.coalescing;
    if (coalescing === undefined) return;
    // Nothing is coalesced any more: what is held goes on now, before the next notification passes (not after it).
    if (guard.intervalMs === 0) {
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
    const guard: GuardState = entry;
    const now = this.now();
    if (this.options.floodSeconds > 0) {
      const elapsed = now - guard.windowStart;
      if (elapsed >= 1000) {
        // Only windows that follow each other count as a sustained flood.
        const closed = guard.windowCount;
        guard.floodWindows =
          elapsed < 2000 && closed > this.options.floodNotificationsPerSecond ? guard.floodWindows + 1 : 0;
        guard.windowStart = now;
        guard.windowCount = 0;
        if (guard.floodWindows >= this.options.floodSeconds) {
          this.release(entry);
          this.handlers.flood(entry, closed);
          return;
        }
      }
      guard.windowCount++;
    }
    if (guard.intervalMs === 0) {
      this.handlers.pass(entry, notification, 1);
      return;
    }
    let coalescing = guard.coalescing;
    if (coalescing === undefined) {
      this.refill(guard, now);
      if (guard.tokens >= 1) {
        guard.tokens -= 1;
        this.handlers.pass(entry, notification, 1);
        return;
      }
      guard.coalescing = coalescing = { pending: undefined, folded: 0, timer: undefined };
      this.handlers.coalescing(entry, guard.intervalMs);
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
    const guard: GuardState = entry;
    this.refill(guard, now);
    const waitMs = guard.tokens >= 1 ? 0 : (1 - guard.tokens) * guard.intervalMs;
    coalescing.timer = setTimeout(() => this.turn(entry, coalescing), Math.ceil(waitMs));
    coalescing.timer.unref();
  }

  /** A turn came: the held notification goes on, and the next turn is awaited while the device goes on. */
  private turn(entry: T, coalescing: Coalescing): void {
    const guard: GuardState = entry;
    if (guard.coalescing !== coalescing) return;
    coalescing.timer = undefined;
    const pending = coalescing.pending;
    if (pending === undefined) {
      // A whole turn without notifications: the device calmed down.
      guard.coalescing = undefined;
      return;
    }
    // The turn takes the whole bucket: the next one is a full interval away however late this timer fired.
    const now = this.now();
    guard.tokens = 0;
    guard.at = now;
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
