/**
 * An adopted connection's credential re-check (close with keepSessions, then start): run once, at
 * the first record or send, every caller sharing the outcome; sends made meanwhile wait for it.
 */

import { MAX_BACKLOG } from './record-backlog';

export class CredentialRecheck {
  private outcome: Promise<boolean> | undefined;
  /** Sends made before the outcome, sent once the credentials are found still valid. */
  private readonly heldSends: Buffer[] = [];

  constructor(
    /** Whether the credentials still hold (undefined) or why not. */
    private readonly check: () => Promise<string | undefined>,
    /** Acts on the outcome (with the sends that waited); returns whether the connection goes on. */
    private readonly settle: (problem: string | undefined, heldSends: Buffer[]) => boolean,
  ) {}

  /** Holds a send until the outcome (starting the check); false when too many wait. */
  hold(data: Buffer): boolean {
    if (this.heldSends.length >= MAX_BACKLOG) return false;
    this.heldSends.push(data);
    void this.run();
    return true;
  }

  /** Runs the check once; whether the connection goes on. */
  run(): Promise<boolean> {
    this.outcome ??= this.check().then(
      (problem) => this.settle(problem, this.heldSends.splice(0)),
      (err: unknown) => this.settle(`credential check failed: ${String(err)}`, this.heldSends.splice(0)),
    );
    return this.outcome;
  }

  /** Forgets the sends that wait (the connection was handed over). */
  dropHeldSends(): void {
    this.heldSends.length = 0;
  }
}
