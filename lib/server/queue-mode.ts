/**
 * Queue mode: which queue-mode device is awake (it listens for a while after each uplink), and the requests held
 * for a sleeping one (bounded, with a time to live, optionally kept in a store across restarts) until it wakes.
 */
import { randomUUID } from 'node:crypto';
import { Lwm2mRequestError } from './errors';
import type { Registration } from './registration';

/**
 * A request held for a sleeping device, as a store keeps it: it still goes out when the device wakes after
 * a restart of the server (a command to a battery valve must not be lost because Node-RED restarted).
 */
export interface QueuedRequestRecord {
  id: string;
  endpoint: string;
  registrationId: string;
  /** The request, as plain data (see cluster.ts requestToWire). */
  request: unknown;
  /** 'PUT /3311/0/5850', for logs and events. */
  description: string;
  queuedAt: number;
  expiresAt: number;
}

/** Where held requests are kept (a file or Redis store); optional. */
export interface QueuedRequestStore {
  save(record: QueuedRequestRecord): Promise<void>;
  remove(id: string): Promise<void>;
  list(): Promise<QueuedRequestRecord[]>;
}

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
  /** A store write failed (the request itself goes on, held in memory). */
  error?(error: Error): void;
}

interface QueuedRequest {
  run: (registration: Registration) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  expiresAt: number;
  description: string;
  /** Its record in the store, removed once it is settled (not when the server merely stops). */
  recordId?: string;
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
    private readonly store?: QueuedRequestStore,
  ) {}

  start(): void {
    if (this.sweepTimer) return;
    this.sweepTimer = setInterval(() => this.sweep(Date.now()), 1000);
    this.sweepTimer.unref();
  }

  /**
   * Stops timers; queued requests fail for their callers (the server is going down). With a store their
   * records stay: they are held again at the next start (see restore) and go out when the device wakes.
   */
  stop(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    const kept = this.store ? '; it stays queued and goes out when the device wakes after the restart' : '';
    for (const state of this.devices.values()) this.failAll(state, 'closed', `the LwM2M server stopped${kept}`, true);
    this.devices.clear();
  }

  /**
   * Holds again what the store kept from before a restart, for registrations that still exist; each one's
   * outcome goes to `settled` (its caller is gone). Records of devices no longer registered are dropped.
   */
  async restore(
    registrationOf: (record: QueuedRequestRecord) => Registration | undefined | Promise<Registration | undefined>,
    run: (registration: Registration, record: QueuedRequestRecord) => Promise<unknown>,
    settled: (record: QueuedRequestRecord, outcome: { value?: unknown; error?: Error }) => void,
  ): Promise<number> {
    if (!this.store) return 0;
    let held = 0;
    const records = (await this.store.list()).sort((a, b) => a.queuedAt - b.queuedAt);
    for (const record of records) {
      const registration = await registrationOf(record);
      if (!registration || registration.id !== record.registrationId || record.expiresAt <= Date.now()) {
        await this.store.remove(record.id).catch((err: Error) => this.events.error?.(err));
        settled(record, {
          error: new Lwm2mRequestError(
            `${record.description} on ${record.endpoint}: ${registration ? 'expired while the server was down' : 'the device is no longer registered'}`,
            registration ? 'expired' : 'not-registered',
            record.endpoint,
          ),
        });
        continue;
      }
      held++;
      this.hold(registration, record.description, (current) => run(current, record), record.expiresAt, record.id).then(
        (value) => settled(record, { value }),
        (error: Error) => settled(record, { error }),
      );
    }
    return held;
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

  /**
   * Holds `run` until the device is awake; resolves or rejects with its outcome. With `persisted` (the request as
   * plain data) and a store, the request is also kept there until it is settled.
   */
  enqueue<T>(
    registration: Registration,
    description: string,
    run: (current: Registration) => Promise<T>,
    persisted?: unknown,
  ): Promise<T> {
    const expiresAt = Date.now() + this.options.requestTtlMs;
    let recordId: string | undefined;
    if (this.store && persisted !== undefined && !this.isFull(registration)) {
      recordId = randomUUID();
      const record: QueuedRequestRecord = {
        id: recordId,
        endpoint: registration.endpoint,
        registrationId: registration.id,
        request: persisted,
        description,
        queuedAt: Date.now(),
        expiresAt,
      };
      this.store.save(record).catch((err: Error) => this.events.error?.(err));
    }
    return this.hold(registration, description, run, expiresAt, recordId);
  }

  private isFull(registration: Registration): boolean {
    return (this.devices.get(registration.endpoint)?.queue.length ?? 0) >= this.options.maxQueuedPerDevice;
  }

  private hold<T>(
    registration: Registration,
    description: string,
    run: (current: Registration) => Promise<T>,
    expiresAt: number,
    recordId: string | undefined,
  ): Promise<T> {
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
      const item: QueuedRequest = {
        run: run as (current: Registration) => Promise<unknown>,
        resolve: resolve as (value: unknown) => void,
        reject,
        expiresAt,
        description,
      };
      if (recordId !== undefined) {
        // Settled either way: the record goes with it.
        item.recordId = recordId;
        item.resolve = (value) => {
          this.dropRecord(item);
          resolve(value as T);
        };
        item.reject = (error) => {
          this.dropRecord(item);
          reject(error);
        };
      }
      state.queue.push(item);
      if (state.awakeUntil > Date.now()) void this.flush(state);
    });
  }

  private dropRecord(item: QueuedRequest): void {
    if (item.recordId === undefined || !this.store) return;
    const id = item.recordId;
    item.recordId = undefined;
    this.store.remove(id).catch((err: Error) => this.events.error?.(err));
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

  private failAll(state: DeviceState, code: 'closed' | 'not-registered', message: string, keepRecords = false): void {
    const queue = state.queue;
    state.queue = [];
    for (const item of queue) {
      if (keepRecords) item.recordId = undefined; // the record outlives this process's promise
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
