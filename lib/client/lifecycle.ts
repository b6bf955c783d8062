/**
 * The client's state (stopped, bootstrapping, registering, registered, ...) and the callers waiting for
 * it to be registered: shared by the facade, the registration engine and the bootstrap handler.
 */
import type { ClientState } from './options';

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

export class ClientLifecycle {
  state: ClientState = 'stopped';
  private waiters: Waiter[] = [];

  constructor(private readonly endpointName: string) {}

  /** Resolves when registered (at once if already). */
  whenRegistered(): Promise<void> {
    if (this.state === 'registered') return Promise.resolve();
    if (this.state === 'stopped' || this.state === 'failed') {
      return Promise.reject(new Error(`${this.endpointName} is ${this.state}`));
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Resolves every waiter (registered), or rejects them all with `err`. */
  settleWaiters(err?: Error): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) {
      if (err === undefined) w.resolve();
      else w.reject(err);
    }
  }
}
