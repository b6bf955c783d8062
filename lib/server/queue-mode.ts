import { Lwm2mRequestError } from './errors';
import type { Registration } from './registration';

export interface QueueModeOptions {
  /**
   * How long a queue-mode device listens after its last uplink (LwM2M Transport §6.5: at least
   * MAX_TRANSMIT_WAIT, 93 s with the RFC 7252 defaults).
   */
  awakeWindowMs: number;
  /** Requests waiting for one sleeping device; more are refused at once ('overloaded'). */
  maxQueuedPerDevice: number;
  /** How long a queued request waits for the device to wake before it fails ('expired'). */
  requestTtlMs: number;
}

export interface QueueModeEvents {
  awake(registration: Registration): void;
  sleeping(registration: Registration): void;
}

interface QueuedRequest {
  run: (registration: Registration) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  expiresAt: number;
  description: string;
}

interface DeviceState {
  registration: Registration;
  awakeUntil: number;
  queue: QueuedRequest[];
  flushing: boolean;
}

/**
 * Queue mode (LwM2M 1.1 `Q`, 1.0 bindings UQ/SQ/UQS): a sleeping device only listens for a while
 * after it talks to us. Requests for a sleeping device wait here (bounded, with a TTL) and go out, in
 * order, when the device wakes (Register, Update, Send, or any other uplink).
 * Leshan refuses such requests; holding them is what flows for battery devices need.
 */
export class QueueModeService {
  private readonly devices = new Map<string, DeviceState>();
  private sweepTimer?: NodeJS.Timeout;

  constructor(
    private readonly options: QueueModeOptions,
    private readonly events: QueueModeEvents,
  ) {}

  start(): void {
    if (this.sweepTimer) return;
    this.sweepTimer = setInterval(() => this.sweep(Date.now()), 1000);
    this.sweepTimer.unref();
  }

  /** Stops timers; queued requests fail (the server is going down). */
  stop(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    for (const state of this.devices.values()) this.failAll(state, 'closed', 'the LwM2M server stopped');
    this.devices.clear();
  }

  isAwake(registration: Registration, now = Date.now()): boolean {
    if (!registration.queueMode) return true;
    const state = this.devices.get(registration.endpoint);
    return state !== undefined && state.awakeUntil > now;
  }

  /** Whether a queue-mode device is known to be asleep (for flows and the device list). */
  status(registration: Registration): 'awake' | 'sleeping' | undefined {
    if (!registration.queueMode) return undefined;
    return this.isAwake(registration) ? 'awake' : 'sleeping';
  }

  queued(endpoint: string): number {
    return this.devices.get(endpoint)?.queue.length ?? 0;
  }

  /** The device sent something: it listens now. Sends what waited for it. */
  touch(registration: Registration, now = Date.now()): void {
    if (!registration.queueMode) {
      this.devices.delete(registration.endpoint);
      return;
    }
    let state = this.devices.get(registration.endpoint);
    const wasAwake = state !== undefined && state.awakeUntil > now;
    if (!state) {
      state = { registration, awakeUntil: 0, queue: [], flushing: false };
      this.devices.set(registration.endpoint, state);
    }
    state.registration = registration;
    state.awakeUntil = now + this.options.awakeWindowMs;
    if (!wasAwake) this.events.awake(registration);
    void this.flush(state);
  }

  /** Any uplink from a device we know is in queue mode (a notification): cheap, by name. */
  touchEndpoint(endpoint: string, now = Date.now()): void {
    const state = this.devices.get(endpoint);
    if (state) this.touch(state.registration, now);
  }

  /** A request got no answer: the device went back to sleep earlier than we thought. */
  markAsleep(registration: Registration): void {
    const state = this.devices.get(registration.endpoint);
    if (!state || state.awakeUntil <= Date.now()) return;
    state.awakeUntil = 0;
    this.events.sleeping(state.registration);
  }

  /** Holds `run` until the device is awake; resolves or rejects with its outcome. */
  enqueue<T>(registration: Registration, description: string, run: (current: Registration) => Promise<T>): Promise<T> {
    let state = this.devices.get(registration.endpoint);
    if (!state) {
      state = { registration, awakeUntil: 0, queue: [], flushing: false };
      this.devices.set(registration.endpoint, state);
    }
    if (state.queue.length >= this.options.maxQueuedPerDevice) {
      return Promise.reject(
        new Lwm2mRequestError(
          `${description} on ${registration.endpoint}: ${state.queue.length} requests already wait for this sleeping device`,
          'overloaded',
          registration.endpoint,
        ),
      );
    }
    return new Promise<T>((resolve, reject) => {
      state.queue.push({
        run: run as (current: Registration) => Promise<unknown>,
        resolve: resolve as (value: unknown) => void,
        reject,
        expiresAt: Date.now() + this.options.requestTtlMs,
        description,
      });
      if (state.awakeUntil > Date.now()) void this.flush(state);
    });
  }

  /** The registration ended: what waited for it fails. */
  forget(registration: Registration, reason: string): void {
    const state = this.devices.get(registration.endpoint);
    if (!state || state.registration.id !== registration.id) return;
    this.devices.delete(registration.endpoint);
    this.failAll(state, 'not-registered', `${registration.endpoint} ${reason} before it woke up`);
  }

  private async flush(state: DeviceState): Promise<void> {
    if (state.flushing) return;
    state.flushing = true;
    try {
      while (state.queue.length > 0 && state.awakeUntil > Date.now()) {
        const next = state.queue.shift()!;
        if (next.expiresAt <= Date.now()) {
          next.reject(expired(next, state.registration));
          continue;
        }
        // One at a time: a device that just woke should not be flooded (and NSTART is 1 anyway).
        await next.run(state.registration).then(next.resolve, next.reject);
      }
    } finally {
      state.flushing = false;
    }
  }

  private sweep(now: number): void {
    for (const state of this.devices.values()) {
      if (state.awakeUntil !== 0 && state.awakeUntil <= now) {
        state.awakeUntil = 0;
        this.events.sleeping(state.registration);
      }
      const kept: QueuedRequest[] = [];
      for (const item of state.queue) {
        if (item.expiresAt <= now) item.reject(expired(item, state.registration));
        else kept.push(item);
      }
      state.queue = kept;
    }
  }

  private failAll(state: DeviceState, code: 'closed' | 'not-registered', message: string): void {
    const queue = state.queue;
    state.queue = [];
    for (const item of queue) {
      item.reject(new Lwm2mRequestError(`${item.description}: ${message}`, code, state.registration.endpoint));
    }
  }
}

function expired(item: QueuedRequest, registration: Registration): Lwm2mRequestError {
  return new Lwm2mRequestError(
    `${item.description} on ${registration.endpoint}: the device did not wake up in time (queued request expired)`,
    'expired',
    registration.endpoint,
  );
}
