/** Small measuring helpers shared by every role. */

/** Latency samples in ms, kept in a bounded reservoir (every sample up to `max`, then a uniform sample). */
export class Latencies {
  private readonly samples: number[] = [];
  private seen = 0;

  constructor(private readonly max = 200_000) {}

  add(ms: number): void {
    this.seen++;
    if (this.samples.length < this.max) this.samples.push(ms);
    else {
      const j = Math.floor(Math.random() * this.seen);
      if (j < this.max) this.samples[j] = ms;
    }
  }

  get count(): number {
    return this.seen;
  }

  /** p in [0, 100]; undefined without samples. */
  percentile(p: number): number | undefined {
    if (this.samples.length === 0) return undefined;
    const sorted = [...this.samples].sort((a, b) => a - b);
    const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
    return sorted[i];
  }

  summary(): { p50?: number; p99?: number } {
    return { p50: this.percentile(50), p99: this.percentile(99) };
  }
}

/** CPU time of this process (user + system) in µs since `mark()`. */
export class CpuMeter {
  private start = process.cpuUsage();

  mark(): void {
    this.start = process.cpuUsage();
  }

  elapsedUs(): number {
    const d = process.cpuUsage(this.start);
    return d.user + d.system;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A closed loop: `window` workers each run `op(i)` one after another until `seconds` have passed (after
 * a warm-up) or `maxOps` were started. Counted: operations that completed inside the measured window.
 * A watchdog (not a timer per operation: the loop must cost next to nothing in the measured process)
 * replaces a worker whose operation has not settled within `opTimeoutMs` (counted as an error), so the
 * window stays full; at the end, operations still in flight get up to 2 s and are then abandoned.
 */
export async function closedLoop(options: {
  window: number;
  seconds: number;
  warmupSeconds?: number;
  maxOps?: number;
  opTimeoutMs?: number;
  op: (i: number) => Promise<unknown>;
}): Promise<{
  ops: number;
  errors: number;
  timeouts: number;
  firstError?: string;
  seconds: number;
  p50?: number;
  p99?: number;
  cpuUs: number;
}> {
  const { window, seconds, op } = options;
  const maxOps = options.maxOps ?? 50_000_000;
  const opTimeoutMs = options.opTimeoutMs ?? 10_000;
  const warmupMs = (options.warmupSeconds ?? 0.5) * 1000;
  const latencies = new Latencies();
  const t0 = performance.now();
  const measureStart = t0 + warmupMs;
  const end = measureStart + seconds * 1000;
  const cpu = new CpuMeter();
  let cpuUs = 0;
  let started = 0;
  let ops = 0;
  let errors = 0;
  let timeouts = 0;
  let firstError: string | undefined;
  interface Worker {
    opStart: number;
    abandoned: boolean;
    done: Promise<void>;
  }
  const workers = new Set<Worker>();
  const startWorker = (): void => {
    const w: Worker = { opStart: 0, abandoned: false, done: Promise.resolve() };
    w.done = (async () => {
      while (!w.abandoned && started < maxOps && performance.now() < end) {
        const i = started++;
        const s = (w.opStart = performance.now());
        try {
          await op(i);
          if (w.abandoned) return;
          const now = performance.now();
          if (s >= measureStart && now <= end) {
            ops++;
            latencies.add(now - s);
          }
        } catch (err) {
          if (w.abandoned) return;
          if (s >= measureStart && performance.now() <= end) errors++;
          firstError ??= (err as Error)?.message ?? String(err);
        }
      }
      workers.delete(w);
    })();
    workers.add(w);
  };
  const watchdog = setInterval(
    () => {
      const now = performance.now();
      for (const w of [...workers]) {
        if (!w.abandoned && now - w.opStart > opTimeoutMs) {
          w.abandoned = true;
          workers.delete(w);
          if (w.opStart >= measureStart && now <= end) timeouts++;
          firstError ??= `no answer within ${opTimeoutMs} ms`;
          startWorker();
        }
      }
    },
    Math.min(250, opTimeoutMs / 4),
  );
  const markCpu = setTimeout(() => cpu.mark(), warmupMs);
  for (let k = 0; k < window; k++) startWorker();
  await sleep(warmupMs + seconds * 1000);
  cpuUs = cpu.elapsedUs();
  const graceEnd = performance.now() + 2000;
  while (workers.size > 0 && performance.now() < graceEnd) await sleep(10);
  clearInterval(watchdog);
  clearTimeout(markCpu);
  for (const w of workers) w.abandoned = true;
  return { ops, errors, timeouts, firstError, seconds, ...latencies.summary(), cpuUs };
}

/** Count, formatted: 12345.6 -> "12,346". */
export function fmtInt(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return 'n/a';
  return Math.round(n).toLocaleString('en-US');
}

export function fmtMs(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return 'n/a';
  return n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : Math.round(n).toString();
}
