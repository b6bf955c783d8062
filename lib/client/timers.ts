/**
 * The client's named timers (update, retry, sleep, reboot, bootstrap, ...): one timer per name, a new one
 * replaces the old, and all of them stop together when the client stops.
 */
export class ClientTimers {
  private readonly timers = new Map<string, NodeJS.Timeout>();

  /** @param onError where an exception thrown by a timer's function goes */
  constructor(private readonly onError: (err: Error) => void) {}

  has(name: string): boolean {
    return this.timers.has(name);
  }

  set(name: string, delayMs: number, fn: () => void, unref = false): void {
    const old = this.timers.get(name);
    if (old !== undefined) clearTimeout(old);
    const timer = setTimeout(
      () => {
        if (this.timers.get(name) === timer) this.timers.delete(name);
        try {
          fn();
        } catch (err) {
          this.onError(err as Error);
        }
      },
      Math.min(0x7fffffff, Math.max(0, delayMs)),
    );
    if (unref) timer.unref();
    this.timers.set(name, timer);
  }

  clear(name: string): void {
    const timer = this.timers.get(name);
    if (timer !== undefined) clearTimeout(timer);
    this.timers.delete(name);
  }

  /** Stops every timer but those named in `keep`. */
  clearAll(keep: string[] = []): void {
    for (const [name, timer] of [...this.timers]) {
      if (keep.includes(name)) continue;
      clearTimeout(timer);
      this.timers.delete(name);
    }
  }
}
