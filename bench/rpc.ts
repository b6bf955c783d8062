/**
 * Child processes of the benchmark and the little RPC the orchestrator drives them with.
 *
 * Every role (server side, load side, a peer) runs in its own child started with fork(); once it says
 * it is ready, the whole process (every thread) is pinned to one CPU with `taskset -a -p`, so the
 * server and the load generator each have a core of their own on a 2-core machine and do not steal
 * from each other. Every call has a time limit, and `stop()` ends the child (SIGKILL if it lingers).
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';

export type Handler = (args: any) => unknown; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Call {
  id: number;
  cmd: string;
  args: unknown;
}

interface Reply {
  id: number;
  ok?: unknown;
  error?: string;
}

export interface ChildOptions {
  /** CPU to pin the child to (undefined: no pinning). */
  cpu?: number;
  /** Extra node flags (--expose-gc, --cpu-prof ...). */
  execArgv?: string[];
  /** Environment additions. */
  env?: Record<string, string>;
  /** Shown in errors. */
  label?: string;
}

const children = new Set<BenchChild>();

/** A role running in a child process. */
export class BenchChild {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private exited = false;
  private readonly exitPromise: Promise<void>;
  readonly label: string;

  private constructor(
    readonly child: ChildProcess,
    label: string,
  ) {
    this.label = label;
    children.add(this);
    child.on('message', (m: Reply) => {
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if (m.error !== undefined) w.reject(new Error(`${this.label}: ${m.error}`));
      else w.resolve(m.ok);
    });
    this.exitPromise = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.exited = true;
        children.delete(this);
        for (const w of this.waiting.values())
          w.reject(new Error(`${this.label} exited (${signal ?? code}) during a call`));
        this.waiting.clear();
        resolve();
      }),
    );
  }

  /** Forks `build/bench/worker.js <role>` and waits until it is ready (then pins it). */
  static async start(role: string, options: ChildOptions = {}): Promise<BenchChild> {
    const child = fork(path.join(__dirname, 'worker.js'), [role], {
      execArgv: options.execArgv ?? [],
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      // the project root (node-red-node-test-helper finds Node-RED from the package.json there)
      cwd: path.resolve(__dirname, '..', '..'),
    });
    const bench = new BenchChild(child, options.label ?? role);
    await bench.call('ping', {}, 30_000);
    if (options.cpu !== undefined) pin(child.pid!, options.cpu);
    return bench;
  }

  get pid(): number {
    return this.child.pid!;
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  call<T = any>(cmd: string, args: unknown = {}, timeoutMs = 120_000): Promise<T> {
    if (this.exited) return Promise.reject(new Error(`${this.label} is not running`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`${this.label}: ${cmd} took more than ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.send({ id, cmd, args } satisfies Call);
    });
  }

  /** Asks the child to clean up and exit; kills it if it has not within `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.exited) return;
    const killer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    try {
      this.child.send({ id: 0, cmd: 'exit', args: {} } satisfies Call);
    } catch {
      this.child.kill('SIGKILL');
    }
    await this.exitPromise;
    clearTimeout(killer);
  }
}

/** Ends every child still running (on a fatal error or a timeout of the whole run). */
export function killAll(): void {
  for (const c of children) c.child.kill('SIGKILL');
}

function pin(pid: number, cpu: number): void {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' });
  } catch {
    // taskset missing or not permitted: the run goes on unpinned (the header says whether pinning works)
  }
}

/** Whether `taskset` can pin processes here. */
export function canPin(): boolean {
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Child side: answers calls with the handlers; 'exit' runs `cleanup` then exits. */
export function serve(handlers: Record<string, Handler>, cleanup: () => Promise<void> | void = () => {}): void {
  const all: Record<string, Handler> = { ping: () => 'pong', ...handlers };
  process.on('message', (m: Call) => {
    if (m.cmd === 'exit') {
      Promise.resolve()
        .then(cleanup)
        .catch(() => undefined)
        .finally(() => process.exit(0));
      return;
    }
    const handler = all[m.cmd];
    if (!handler) {
      process.send!({ id: m.id, error: `unknown command ${m.cmd}` } satisfies Reply);
      return;
    }
    Promise.resolve()
      .then(() => handler(m.args))
      .then(
        (ok) => process.send!({ id: m.id, ok } satisfies Reply),
        (err: unknown) => process.send!({ id: m.id, error: (err as Error)?.stack ?? String(err) } satisfies Reply),
      );
  });
  // The orchestrator went away: never outlive it.
  process.on('disconnect', () => {
    Promise.resolve()
      .then(cleanup)
      .catch(() => undefined)
      .finally(() => process.exit(0));
  });
}
