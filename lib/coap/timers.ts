/** Something with (at most) one pending deadline in a TimerHeap. */
export interface TimerItem {
  /** Deadline (performance.now() ms); managed by the heap. */
  timerAt: number;
  /** Position in the heap, -1 when not scheduled; managed by the heap. */
  timerIdx: number;
  onTimer(now: number): void;
}

/**
 * One Node timer for any number of deadlines: a binary min-heap with O(log n) schedule/cancel.
 * The underlying timer is re-armed only when a new deadline is earlier than the armed one by more
 * than `slackMs` (a deadline may then fire up to slackMs late), so a steady stream of exchanges
 * costs no setTimeout/clearTimeout per message.
 */
export class TimerHeap {
  private readonly h: TimerItem[] = [];
  private handle: NodeJS.Timeout | undefined;
  private armedAt = Infinity;
  private firing = false;
  /** Receives exceptions thrown by onTimer (they must not escape a Node timer callback). */
  onError: (err: unknown) => void = () => {};

  constructor(private readonly slackMs: number) {}

  get size(): number {
    return this.h.length;
  }

  schedule(item: TimerItem, at: number): void {
    if (!(at < Infinity)) {
      this.cancel(item);
      return;
    }
    const h = this.h;
    item.timerAt = at;
    let i = item.timerIdx;
    if (i < 0) {
      i = h.length;
      h.push(item);
      item.timerIdx = i;
      this.up(i);
    } else {
      this.up(i);
      this.down(item.timerIdx);
    }
    if (!this.firing && at < this.armedAt - this.slackMs) this.arm(at);
  }

  cancel(item: TimerItem): void {
    const i = item.timerIdx;
    if (i < 0) return;
    item.timerIdx = -1;
    const h = this.h;
    const last = h.pop()!;
    if (i < h.length) {
      h[i] = last;
      last.timerIdx = i;
      this.up(i);
      this.down(last.timerIdx);
    }
    // the armed Node timer stays: firing with nothing due just re-arms (cheaper than clear+set)
  }

  /** Drops every deadline and the Node timer. */
  clear(): void {
    for (const it of this.h) it.timerIdx = -1;
    this.h.length = 0;
    if (this.handle !== undefined) clearTimeout(this.handle);
    this.handle = undefined;
    this.armedAt = Infinity;
  }

  private arm(at: number): void {
    if (this.handle !== undefined) clearTimeout(this.handle);
    const delay = Math.min(0x7fffffff, Math.max(1, Math.ceil(at - performance.now())));
    this.handle = setTimeout(this.fire, delay);
    this.armedAt = at;
  }

  private readonly fire = (): void => {
    this.handle = undefined;
    this.armedAt = Infinity;
    this.firing = true;
    const h = this.h;
    try {
      const now = performance.now();
      let budget = h.length * 2 + 16; // guards against an item rescheduling itself into the past forever
      while (h.length > 0 && h[0].timerAt <= now + 0.5 && budget-- > 0) {
        const it = h[0];
        this.cancel(it);
        try {
          it.onTimer(now);
        } catch (err) {
          this.onError(err);
        }
      }
    } finally {
      this.firing = false;
      if (h.length > 0) this.arm(h[0].timerAt);
    }
  };

  private up(i: number): void {
    const h = this.h;
    const it = h[i];
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pi = h[p];
      if (pi.timerAt <= it.timerAt) break;
      h[i] = pi;
      pi.timerIdx = i;
      i = p;
    }
    h[i] = it;
    it.timerIdx = i;
  }

  private down(i: number): void {
    const h = this.h;
    const n = h.length;
    const it = h[i];
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && h[r].timerAt < h[l].timerAt ? r : l;
      const ci = h[c];
      if (ci.timerAt >= it.timerAt) break;
      h[i] = ci;
      ci.timerIdx = i;
      i = c;
    }
    h[i] = it;
    it.timerIdx = i;
  }
}
