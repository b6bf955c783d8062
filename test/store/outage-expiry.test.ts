/**
 * Expiry across a store outage, on the registration service alone with a store that can be made unreachable: what
 * comes due during the outage waits, gets one lifetime from the store's return, and a store that fails a removal
 * neither crashes the sweep nor loses the registration.
 */
import assert from 'node:assert/strict';
import type { Registration } from '../../lib/server/registration';
import { RegistrationService } from '../../lib/server/registration-service';
import type { StoreOutage } from '../../lib/server/stores';
import { StoreUnreachableError } from '../../lib/server/stores';
import { MemoryRegistrationStore } from '../../lib/server/memory-stores';
import { storedRegistration } from './stored-registration';

/** A memory store that can be out of reach, as the Redis store is during an outage. */
class FlakyStore extends MemoryRegistrationStore {
  reachable = true;
  failRemovals = false;
  recorded: StoreOutage | undefined;
  private readonly listeners = new Set<(outage: StoreOutage) => void>();

  onRestored(listener: (outage: StoreOutage) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  lastOutage(): StoreOutage | undefined {
    return this.recorded;
  }

  restore(outage: StoreOutage): void {
    this.reachable = true;
    for (const listener of this.listeners) listener(outage);
  }

  override async remove(registrationId: string): Promise<Registration | undefined> {
    if (this.failRemovals) throw new StoreUnreachableError('Redis at 127.0.0.1:1 is unreachable (test)');
    return super.remove(registrationId);
  }
}

/**
 * Far enough ahead that the service's own once-a-second sweep (real time) never finds anything due; a whole second,
 * as the expiry wheel counts in seconds (an expiry is found in the sweep of its second).
 */
const T = Math.ceil((Date.now() + 3_600_000) / 1000) * 1000;

describe('expiry across a store outage (registration service)', () => {
  let store: FlakyStore;
  let service: RegistrationService;
  let expired: string[];
  let failures: Error[];

  async function start(graceSeconds = 5): Promise<void> {
    service = new RegistrationService(
      store,
      { lifetimeGraceSeconds: graceSeconds, defaultLifetimeSeconds: 86400 },
      {
        registered: () => undefined,
        updated: () => undefined,
        deregistered: () => undefined,
        expired: (gone) => expired.push(gone.endpoint),
        expiryFailed: (error) => failures.push(error),
      },
    );
    await service.start();
  }

  /** Expired events are told on the next turn of the event loop. */
  async function sweep(at: number): Promise<void> {
    await service.sweep(at);
    await new Promise((resolve) => setImmediate(resolve));
  }

  beforeEach(() => {
    store = new FlakyStore();
    expired = [];
    failures = [];
  });
  afterEach(() => service?.stop());

  it('nothing expires while the store is unreachable; due registrations get one lifetime (plus grace) from its return', async () => {
    // Due at T+65 s (60 s lifetime, 5 s grace), and at T+125 s; the store is away from T+10 s to T+200 s.
    await store.add(storedRegistration('due-in-outage', 60, T));
    await store.add(storedRegistration('long-lived', 3600, T));
    await start();
    store.reachable = false;
    await sweep(T + 150_000);
    assert.deepEqual(expired, []);

    store.restore({ from: T + 10_000, to: T + 200_000 });
    await new Promise((resolve) => setImmediate(resolve));
    await sweep(T + 200_001);
    await sweep(T + 264_999);
    assert.deepEqual(expired, [], 'not before one lifetime and grace after the return');
    await sweep(T + 265_000);
    assert.deepEqual(expired, ['due-in-outage']);
    // A long lifetime moves by at most the outage: from T+3605 s to T+3805 s.
    await sweep(T + 3_700_000);
    assert.deepEqual(expired, ['due-in-outage']);
    await sweep(T + 3_805_000);
    assert.deepEqual(expired, ['due-in-outage', 'long-lived']);
  });

  it('a device that updates after the return is on its own clock again; one expired before the outage is not spared', async () => {
    await store.add(storedRegistration('updates', 60, T));
    await store.add(storedRegistration('gone-before', 10, T - 60_000)); // due at T-45 s, never swept
    await start();
    store.reachable = false;
    store.restore({ from: T, to: T + 100_000 });
    await new Promise((resolve) => setImmediate(resolve));
    await store.update({ ...storedRegistration('updates', 30, T + 120_000) });
    await sweep(T + 120_001);
    assert.deepEqual(expired, ['gone-before']);
    // Its own lifetime now (30 s from T+120 s, plus 5 s), not the outage's grace (T+165 s).
    await sweep(T + 155_000);
    assert.deepEqual(expired, ['gone-before', 'updates']);
  });

  it('an outage another instance recorded in the shared store before this one started gets the same grace', async () => {
    await store.add(storedRegistration('due-in-outage', 60, T));
    store.recorded = { from: T + 10_000, to: T + 200_000 };
    await start();
    await sweep(T + 264_999);
    assert.deepEqual(expired, []);
    await sweep(T + 265_000);
    assert.deepEqual(expired, ['due-in-outage']);
  });

  it('a removal the store fails is reported once and tried again at the next sweep, never lost and never thrown', async () => {
    await store.add(storedRegistration('first', 60, T));
    await store.add(storedRegistration('second', 60, T));
    await start();
    store.failRemovals = true;
    await sweep(T + 70_000);
    await sweep(T + 71_000);
    assert.deepEqual(expired, []);
    assert.equal(failures.length, 1, 'reported once a minute at most');
    assert.match(failures[0].message, /expiry could not reach the registration store \(tried again\): Redis at/);
    store.failRemovals = false;
    await sweep(T + 72_000);
    assert.deepEqual(expired.sort(), ['first', 'second']);
  });
});
