/**
 * The notification guard when an observation's pmin changes while it coalesces (Write-Attributes on the observed
 * path): what it holds must neither go on after newer values nor wait for the turn of the old pmin.
 */
import { strict as assert } from 'node:assert';
import type { IncomingResponse } from '../../lib/coap/types';
import { NotificationGuard } from '../../lib/server/notification-guard';
import type { GuardState } from '../../lib/server/notification-guard';

function notification(value: number): IncomingResponse {
  return {
    peer: { address: '127.0.0.1', port: 5683, key: '127.0.0.1:5683' },
    code: '2.05',
    options: [],
    payload: Buffer.from(String(value)),
    observe: value,
    token: Buffer.from([1]),
    rttMs: 0,
  };
}

describe('notification guard: the interval changes while notifications are held', () => {
  let guard: NotificationGuard<GuardState>;
  let entry: GuardState;
  let passed: number[];
  let onPass: (() => void) | undefined;

  function start(maxNotificationsPerSecond: number, pminSeconds: number): void {
    passed = [];
    onPass = undefined;
    guard = new NotificationGuard<GuardState>(
      { maxNotificationsPerSecond, notificationBurst: 1, floodNotificationsPerSecond: 0, floodSeconds: 0 },
      {
        pass: (_entry, held) => {
          passed.push(held.observe!);
          onPass?.();
        },
        coalescing: () => undefined,
        flood: () => undefined,
      },
    );
    entry = guard.state(pminSeconds);
  }

  afterEach(() => guard.release(entry));

  it('pmin removed with no ceiling: the held value goes on before the next one, never after it', () => {
    start(0, 30);
    guard.admit(entry, notification(1)); // the burst
    guard.admit(entry, notification(2)); // held for the next turn (30 s away)
    guard.setMinPeriod(entry, undefined); // no pmin, no ceiling: nothing is coalesced any more
    guard.admit(entry, notification(3));
    assert.deepEqual(passed, [1, 2, 3], 'in the order the device sent them, the latest last');
  });

  it('a shorter pmin: the held value goes on at the turn of the new pmin, not of the old one', async function () {
    this.timeout(5000);
    start(0, 30);
    guard.admit(entry, notification(1));
    guard.admit(entry, notification(2)); // held for the next turn (30 s away)
    const released = new Promise<void>((resolve) => (onPass = resolve));
    guard.setMinPeriod(entry, 0.05); // 50 ms from now on
    await released; // before the fix: 30 s, past this test's time limit
    assert.deepEqual(passed, [1, 2]);
  });
});
