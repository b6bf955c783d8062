/**
 * Reports of protection limits that acted (a registration refused, notifications coalesced, an observation
 * cancelled for flooding, requests dropped by the per-address budget), throttled: the first of a kind is reported at
 * once, the others of that kind are counted and summed up in one report at the end of each period (a minute), so a
 * flood cannot flood the log as well.
 */

/** What acted. */
export type LimitKind =
  'registration-cap' | 'registration-budget' | 'request-budget' | 'notifications-coalesced' | 'notification-flood';

export interface LimitReport {
  kind: LimitKind;
  /** How many times the limit acted since the previous report of this kind (1 for the first). */
  count: number;
  /** One line for a log: the latest occurrence, and the count when there were several. */
  message: string;
}

interface KindState {
  /** Occurrences not reported yet. */
  count: number;
  /** The latest occurrence's text. */
  latest: string;
  timer: NodeJS.Timeout | undefined;
}

export class LimitWarnings {
  private readonly kinds = new Map<LimitKind, KindState>();

  constructor(
    private readonly report: (report: LimitReport) => void,
    private readonly periodMs = 60_000,
  ) {}

  /** The limit `kind` acted; `detail` says on what (one line, without a count). */
  note(kind: LimitKind, detail: string): void {
    const state = this.kinds.get(kind);
    if (state !== undefined) {
      state.count++;
      state.latest = detail;
      return;
    }
    // The first of a kind goes out at once; the period that follows collects the others.
    const fresh: KindState = { count: 0, latest: detail, timer: undefined };
    fresh.timer = setTimeout(() => this.flush(kind, fresh), this.periodMs);
    fresh.timer.unref();
    this.kinds.set(kind, fresh);
    this.report({ kind, count: 1, message: detail });
  }

  /** Reports what is counted and forgets it (the server stops). */
  stop(): void {
    for (const [kind, state] of [...this.kinds]) {
      clearTimeout(state.timer);
      this.kinds.delete(kind);
      if (state.count > 0) this.report(summary(kind, state, this.periodMs));
    }
  }

  private flush(kind: LimitKind, state: KindState): void {
    if (this.kinds.get(kind) !== state) return;
    if (state.count === 0) {
      // A quiet period: the next occurrence is reported at once again.
      this.kinds.delete(kind);
      return;
    }
    this.report(summary(kind, state, this.periodMs));
    state.count = 0;
    state.timer = setTimeout(() => this.flush(kind, state), this.periodMs);
    state.timer.unref();
  }
}

function summary(kind: LimitKind, state: KindState, periodMs: number): LimitReport {
  const seconds = Math.round(periodMs / 1000);
  return {
    kind,
    count: state.count,
    message: `${state.count} times in the last ${seconds} s; the latest: ${state.latest}`,
  };
}

/** How often the endpoint's count of requests dropped by the per-address budget is looked at. */
const REQUEST_BUDGET_CHECK_MS = 10_000;

/**
 * Reports the requests the CoAP endpoint drops for its per-address budget (it counts them: `dropped`), at most once
 * per check with how many. Returns the timer (cleared when the server stops).
 */
export function watchRequestBudget(
  dropped: () => number,
  budget: number,
  warnings: LimitWarnings,
  intervalMs = REQUEST_BUDGET_CHECK_MS,
): NodeJS.Timeout {
  let reported = dropped();
  const timer = setInterval(() => {
    const now = dropped();
    if (now === reported) return;
    warnings.note(
      'request-budget',
      `${now - reported} requests dropped: one address sent more than ${budget} a second ` +
        '(raise the per-address request budget if many devices share one address)',
    );
    reported = now;
  }, intervalMs);
  timer.unref();
  return timer;
}
