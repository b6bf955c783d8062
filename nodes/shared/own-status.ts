/** The status line of a node that reports its own results rather than its server's state. */
import type { Node, NodeStatus } from './node-red';
import { Status } from './status';

/** How often at most a node's status line changes: a flow of thousands of reads a second stays quiet in the editor. */
export const STATUS_INTERVAL_MS = 250;

/**
 * The status line of a node that shows its own results (the operation nodes, observe, firmware update), like core
 * `http request`: its last outcome, or its server's problem (red: port in use, store unreachable) while there is
 * one. The server's ordinary status (ports, device count) is for the nodes that listen to it, not for these.
 * Changes within STATUS_INTERVAL_MS of the last one are held and the latest is shown at its end.
 */
export class OwnStatus {
  /** What the node shows of its own; a function is called only when its status is written. */
  private own: NodeStatus | (() => NodeStatus) = Status.clear;
  private serverProblem: NodeStatus | undefined;
  private written: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private pending = false;
  private closed = false;

  constructor(private readonly node: Pick<Node, 'status'>) {}

  /** The server node's status (hand it to `register`): shown instead of the node's own only while it is red. */
  readonly fromServer = (status: NodeStatus): void => {
    this.serverProblem = status.fill === 'red' ? status : undefined;
    this.render();
  };

  /**
   * Shows `status`. Given as a function, it is made only when it is written: most of a burst is never shown, and
   * making a status text (a catalog lookup, a time) per notification or answer would be work thrown away.
   */
  show(status: NodeStatus | (() => NodeStatus)): void {
    this.own = status;
    this.render();
  }

  /** The node is closing: nothing more is written (a campaign cancelled on close may still report). */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = false;
  }

  private render(): void {
    if (this.closed) return;
    if (this.timer) {
      this.pending = true;
      return;
    }
    this.write();
    this.timer = setTimeout(() => this.flush(), STATUS_INTERVAL_MS);
    this.timer.unref?.();
  }

  private flush(): void {
    this.timer = undefined;
    if (!this.pending) return;
    this.pending = false;
    this.render();
  }

  private write(): void {
    const status = this.serverProblem ?? (typeof this.own === 'function' ? this.own() : this.own);
    const key = JSON.stringify(status);
    if (key === this.written) return;
    this.written = key;
    this.node.status(status);
  }
}
