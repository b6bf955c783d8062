/**
 * What a store could not read back (or write), kept as state. A journal reports its torn lines and the entries
 * sealed with another secret while it is read, which happens when the stores are made: before any config node
 * listens. So a problem is kept until someone has heard it, and the counts stay readable (node status, device
 * browser) for as long as the stores are open.
 */
import { EventEmitter } from 'node:events';

/** 'torn-lines': journal lines cut short by a kill; 'unreadable-entries': sealed with another secret. */
export type StoreProblemKind = 'torn-lines' | 'unreadable-entries' | 'other';

/** What a store says when it counted what it skipped. */
export interface SkippedCount {
  kind: Exclude<StoreProblemKind, 'other'>;
  count: number;
  /** A later report with the same key replaces this one (a collection read again after a Redis outage). */
  key: string;
}

export interface StoreProblem {
  kind: StoreProblemKind;
  /** Lines or entries concerned (1 for 'other'). */
  count: number;
  message: string;
  key: string;
  at: number;
}

/** Problems kept for the status and the device browser: the counted ones, and this many of the others. */
const MAX_OTHER = 20;

export class StoreProblemLog extends EventEmitter<{ problem: [StoreProblem] }> {
  private readonly current = new Map<string, StoreProblem>();
  private unheard: StoreProblem[] = [];
  private others = 0;

  /** Keeps the problem, and tells a listener at once, or the first one to come (`takeUnheard`). */
  report(message: string, counted?: SkippedCount): void {
    const problem: StoreProblem = counted
      ? { ...counted, message, at: Date.now() }
      : { kind: 'other', count: 1, message, key: `other:${++this.others}`, at: Date.now() };
    this.current.delete(problem.key); // a replaced report moves to the end (newest)
    this.current.set(problem.key, problem);
    if (problem.kind === 'other') this.forgetOldOthers();
    if (this.listenerCount('problem') > 0) {
      this.emit('problem', problem);
      return;
    }
    this.unheard.push(problem);
    // Bounded: the oldest of the uncounted ones go first, the counts stay.
    if (this.unheard.length > MAX_OTHER * 2) {
      const oldest = this.unheard.findIndex((unheard) => unheard.kind === 'other');
      this.unheard.splice(oldest === -1 ? 0 : oldest, 1);
    }
  }

  /** What was reported while nobody listened, once: whoever takes it tells the user. */
  takeUnheard(): StoreProblem[] {
    const unheard = this.unheard;
    this.unheard = [];
    return unheard;
  }

  /** Every problem kept, oldest first. */
  list(): StoreProblem[] {
    return [...this.current.values()];
  }

  /** Lines and entries skipped when the store was read. */
  private skipped(): { tornLines: number; unreadableEntries: number } {
    let tornLines = 0;
    let unreadableEntries = 0;
    for (const problem of this.current.values()) {
      if (problem.kind === 'torn-lines') tornLines += problem.count;
      else if (problem.kind === 'unreadable-entries') unreadableEntries += problem.count;
    }
    return { tornLines, unreadableEntries };
  }

  /** Short words for a node status ('store: 1 torn line, 3 unreadable'); undefined when nothing was skipped. */
  statusText(): string | undefined {
    const { tornLines, unreadableEntries } = this.skipped();
    const parts: string[] = [];
    if (tornLines > 0) parts.push(`${tornLines} torn line${tornLines === 1 ? '' : 's'}`);
    if (unreadableEntries > 0) parts.push(`${unreadableEntries} unreadable`);
    return parts.length > 0 ? `store: ${parts.join(', ')}` : undefined;
  }

  private forgetOldOthers(): void {
    const others = [...this.current.values()].filter((problem) => problem.kind === 'other');
    for (const problem of others.slice(0, Math.max(0, others.length - MAX_OTHER))) this.current.delete(problem.key);
  }
}
