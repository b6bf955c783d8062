import type { BootstrapServer } from '../../lib/bootstrap/bootstrap-server';
import type {
  DeviceExchange,
  Lwm2mServer,
  Notification,
  QueuedRequestSettled,
  SendReport,
} from '../../lib/server/lwm2m-server';
import type { Registration } from '../../lib/server/registration';
import type { StoredObservation } from '../../lib/server/stores';
import { jsonSafe, valuesByPath } from '../../lib/model/tree-json';
import type { ValueJson } from '../../lib/model/tree-json';
import { t } from './i18n';

/** A device as the editor's list shows it: plain JSON. */
export interface DeviceSummary {
  endpoint: string;
  registrationId: string;
  address: string;
  port: number;
  lwm2mVersion: string;
  binding: string;
  queueMode: boolean;
  /** Seconds. */
  lifetime: number;
  /** 'written': the lifetime this server wrote into its account on the device, not stated by the device since. */
  lifetimeSource?: 'written';
  registeredAt: number;
  lastUpdateAt: number;
  /** Epoch ms of the last thing heard from the device that this process saw (Register, Update, notification, Send). */
  lastSeenAt: number;
  /** 'online' for a device that is always reachable; 'awake' or 'sleeping' for a queue-mode device. */
  state: 'online' | 'awake' | 'sleeping';
  secured: boolean;
  securityMode?: string;
}

export interface FleetCounts {
  total: number;
  awake: number;
  sleeping: number;
  secured: number;
  /** DTLS records the listener dropped, by reason (lib/dtls/drops.ts); absent when none. */
  dtlsDropped?: Partial<Record<string, number>>;
}

/** One line of a device's log: an event of its registration, a notification, or an exchange the browser made. */
export interface LogEntry {
  at: number;
  kind: 'event' | 'notification' | 'exchange';
  /** registered, updated, notification, Read, Write, ... */
  name: string;
  text: string;
  path?: string;
  code?: string;
  rttMs?: number;
  /** Notifications and reads: the values by resource path, for the tree. */
  values?: Record<string, ValueJson>;
  error?: boolean;
}

/** What a `publish` call sends: Node-RED comms topic and JSON data. */
export type Publish = (topic: string, data: unknown) => void;

/** How long a watch lasts without being renewed: the editor renews every 20 s while its tab is shown. */
export const LEASE_MS = 60_000;
/** Fleet changes are coalesced: one message at most this often, however many devices register. */
export const FLUSH_MS = 500;
/** Devices with a log kept (least recently active dropped first), and entries per log. */
const LOGGED_DEVICES = 1000;
const LOG_ENTRIES = 50;
/** Entries one device message carries at most: a device notifying 1000 times a second sends the latest. */
const ENTRIES_PER_MESSAGE = 50;

export function fleetTopic(configId: string): string {
  return `lwm2m/fleet/${configId}`;
}

export function deviceTopic(configId: string, endpoint: string): string {
  return `lwm2m/device/${configId}/${encodeURIComponent(endpoint)}`;
}

/**
 * Watches one LwM2M server for the editor's device browser: keeps a short log per device (bounded), tracks
 * when each device was last heard, and, while an editor watches, publishes coalesced fleet changes (counts
 * only: the list itself is fetched through the admin API, which checks permissions) and the log entries of
 * the devices an editor has open.
 *
 * Listeners are attached for as long as the config node exists; without a watch, a notification costs one
 * Map lookup and one Map write.
 */
export class ServerWatch {
  private readonly logs = new Map<string, LogEntry[]>();
  private readonly lastSeen = new Map<string, number>();
  private fleetLeaseUntil = 0;
  private readonly deviceLeases = new Map<string, number>();
  private fleetChanges = 0;
  private readonly pendingEntries = new Map<string, LogEntry[]>();
  private flushTimer?: NodeJS.Timeout;
  private readonly listeners: [string, (...args: never[]) => void][];
  /** Listening to every request the server sends, only while an editor has a device open (it costs per request). */
  private exchangesFollowed = false;
  private readonly onExchange = (exchange: DeviceExchange) => this.logExchange(exchange);
  /** Devices with an operation from the editor in flight: logged by the operation itself, with its values. */
  private readonly editorBusy = new Map<string, number>();

  constructor(
    readonly configId: string,
    readonly server: Lwm2mServer,
    private readonly publish: Publish,
  ) {
    this.listeners = [
      [
        'registered',
        (registration: Registration, replaced?: Registration) => this.onRegistered(registration, replaced),
      ],
      ['updated', (registration: Registration, previous: Registration) => this.onUpdated(registration, previous)],
      ['deregistered', (registration: Registration) => this.onEnded(registration, 'deregistered')],
      ['expired', (registration: Registration) => this.onEnded(registration, 'expired')],
      ['moved', (registration: Registration, previous: Registration) => this.onMoved(registration, previous)],
      ['awake', (registration: Registration) => this.onQueueState(registration, 'awake')],
      ['sleeping', (registration: Registration) => this.onQueueState(registration, 'sleeping')],
      ['notification', (notification: Notification) => this.onNotification(notification)],
      [
        'observationEnded',
        (observation: StoredObservation, reason: string) => this.onObservationEnded(observation, reason),
      ],
      ['send', (report: SendReport) => this.onSend(report)],
      [
        'queuedRequestSettled',
        (settled: QueuedRequestSettled) =>
          this.recordEvent(
            settled.endpoint,
            'held request',
            settled.code !== undefined
              ? t('log.heldRequest', { request: settled.description, code: settled.code })
              : t('log.heldRequestFailed', { request: settled.description, error: settled.error }),
          ),
      ],
    ];
    const emitter = server as unknown as { on(event: string, listener: (...args: never[]) => void): void };
    for (const [event, listener] of this.listeners) emitter.on(event, listener);
  }

  /** Stops listening and publishing (the config node is gone or uses another server now). */
  detach(): void {
    const emitter = this.server as unknown as { off(event: string, listener: (...args: never[]) => void): void };
    for (const [event, listener] of this.listeners) emitter.off(event, listener);
    this.followExchanges(false);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.pendingEntries.clear();
  }

  /** An editor shows this server's device list: fleet changes are published for a while. */
  watchFleet(now = Date.now()): void {
    this.fleetLeaseUntil = now + LEASE_MS;
  }

  /** An editor has this device open: its log entries are published for a while. */
  watchDevice(endpoint: string, now = Date.now()): void {
    this.deviceLeases.set(endpoint, now + LEASE_MS);
    // Expired leases go when another one is taken: the map stays as small as the number of open devices.
    for (const [name, until] of this.deviceLeases) if (until < now) this.deviceLeases.delete(name);
    this.followExchanges(true);
  }

  unwatchDevice(endpoint: string): void {
    this.deviceLeases.delete(endpoint);
    this.pendingEntries.delete(endpoint);
    if (this.deviceLeases.size === 0) this.followExchanges(false);
  }

  /** Runs an operation from the editor; the server's own report of its exchange is not logged twice. */
  async fromEditor<T>(endpoint: string, operation: () => Promise<T>): Promise<T> {
    this.editorBusy.set(endpoint, (this.editorBusy.get(endpoint) ?? 0) + 1);
    try {
      return await operation();
    } finally {
      const left = (this.editorBusy.get(endpoint) ?? 1) - 1;
      if (left > 0) this.editorBusy.set(endpoint, left);
      else this.editorBusy.delete(endpoint);
    }
  }

  private followExchanges(on: boolean): void {
    if (on === this.exchangesFollowed) return;
    this.exchangesFollowed = on;
    if (on) this.server.on('exchange', this.onExchange);
    else this.server.off('exchange', this.onExchange);
  }

  /** A request a flow (or anything but the editor) sent to a device the editor has open. */
  private logExchange(exchange: DeviceExchange): void {
    if (!this.isDeviceWatched(exchange.endpoint)) {
      // Leases end by time, not by a call: stop paying for exchanges once no open device is left.
      const now = Date.now();
      if (![...this.deviceLeases.values()].some((until) => until >= now)) this.followExchanges(false);
      return;
    }
    if (this.editorBusy.has(exchange.endpoint)) return;
    const target = exchange.path || '/';
    this.record(exchange.endpoint, {
      at: exchange.at,
      kind: 'exchange',
      name: exchange.method,
      path: target,
      ...(exchange.code !== undefined ? { code: exchange.code } : {}),
      rttMs: exchange.rttMs,
      ...(exchange.code === undefined ? { error: true } : {}),
      text:
        exchange.code !== undefined
          ? t('log.fromFlow', { operation: exchange.method, path: target, code: exchange.code })
          : t('log.failed', { operation: exchange.method, path: target, error: exchange.error ?? t('log.noAnswer') }),
    });
  }

  isDeviceWatched(endpoint: string, now = Date.now()): boolean {
    const until = this.deviceLeases.get(endpoint);
    return until !== undefined && until >= now;
  }

  /** The device's last log entries, oldest first. */
  log(endpoint: string): LogEntry[] {
    return [...(this.logs.get(endpoint) ?? [])];
  }

  lastSeenOf(registration: Registration): number {
    return Math.max(registration.lastUpdateAt, this.lastSeen.get(registration.endpoint) ?? 0);
  }

  summaryOf(registration: Registration): DeviceSummary {
    const queueState = this.server.queueStatus(registration);
    return {
      endpoint: registration.endpoint,
      registrationId: registration.id,
      address: registration.address,
      port: registration.port,
      lwm2mVersion: registration.lwm2mVersion,
      binding: registration.binding,
      queueMode: registration.queueMode,
      lifetime: registration.lifetime,
      ...(registration.lifetimeSource ? { lifetimeSource: registration.lifetimeSource } : {}),
      registeredAt: registration.registeredAt,
      lastUpdateAt: registration.lastUpdateAt,
      lastSeenAt: this.lastSeenOf(registration),
      state: queueState ?? 'online',
      secured: registration.security !== undefined,
      ...(registration.security ? { securityMode: registration.security.mode } : {}),
    };
  }

  /** An exchange the browser made with the device (Read, Write, ...): logged like the device's own events. */
  recordExchange(endpoint: string, entry: Omit<LogEntry, 'at' | 'kind'>): LogEntry {
    const full: LogEntry = { at: Date.now(), kind: 'exchange', ...entry };
    this.record(endpoint, full);
    return full;
  }

  private onRegistered(registration: Registration, replaced?: Registration): void {
    this.lastSeen.set(registration.endpoint, registration.registeredAt);
    const objects = Object.keys(registration.objects).length;
    this.recordEvent(
      registration.endpoint,
      'registered',
      t('log.registered', {
        address: where(registration),
        version: registration.lwm2mVersion,
        binding: registration.binding + (registration.queueMode ? ` ${t('log.queueMode')}` : ''),
        lifetime: registration.lifetime,
        objects,
        security: registration.security
          ? t('log.securedAs', { mode: registration.security.mode, identity: registration.security.identity })
          : t('log.noSecurity'),
      }) + (replaced ? ` ${t('log.replaces')}` : ''),
    );
    this.fleetChanged();
  }

  private onUpdated(registration: Registration, previous: Registration): void {
    this.lastSeen.set(registration.endpoint, registration.lastUpdateAt);
    const changes: string[] = [];
    if (registration.lifetime !== previous.lifetime)
      changes.push(
        t(registration.lifetimeSource === 'written' ? 'log.lifetimeWritten' : 'log.lifetime', {
          lifetime: registration.lifetime,
        }),
      );
    if (registration.binding !== previous.binding) changes.push(t('log.binding', { binding: registration.binding }));
    if (registration.address !== previous.address || registration.port !== previous.port)
      changes.push(t('log.address', { address: where(registration) }));
    if (JSON.stringify(registration.objects) !== JSON.stringify(previous.objects)) changes.push(t('log.objects'));
    this.recordEvent(
      registration.endpoint,
      'updated',
      changes.length ? t('log.updatedWith', { changes: changes.join(', ') }) : t('log.updated'),
    );
    this.fleetChanged();
  }

  private onEnded(registration: Registration, kind: 'deregistered' | 'expired'): void {
    this.lastSeen.delete(registration.endpoint);
    this.recordEvent(
      registration.endpoint,
      kind,
      kind === 'expired' ? t('log.expired', { lifetime: registration.lifetime }) : t('log.deregistered'),
    );
    this.fleetChanged();
  }

  private onMoved(registration: Registration, previous: Registration): void {
    this.recordEvent(
      registration.endpoint,
      'moved',
      t('log.moved', { from: where(previous), to: where(registration) }),
    );
    this.fleetChanged();
  }

  private onQueueState(registration: Registration, state: 'awake' | 'sleeping'): void {
    if (state === 'awake') this.lastSeen.set(registration.endpoint, Date.now());
    this.recordEvent(registration.endpoint, state, t(state === 'awake' ? 'log.awake' : 'log.sleeping'));
    this.fleetChanged();
  }

  private onNotification(notification: Notification): void {
    // The hot path with many observations: no log and no message unless an editor has this device open.
    this.lastSeen.set(notification.endpoint, notification.receivedAt.getTime());
    if (!this.isDeviceWatched(notification.endpoint)) return;
    const values: Record<string, ValueJson> = {};
    try {
      if (notification.node) Object.assign(values, valuesByPath(notification.node, notification.path));
      if (notification.nodes)
        for (const [path, node] of notification.nodes) Object.assign(values, valuesByPath(node, path));
    } catch {
      // A node that does not fit its path: the text below still shows the value.
    }
    const text = notification.error
      ? t('log.notificationError', { path: notification.path, error: notification.error })
      : t('log.notification', { path: notification.path, value: short(JSON.stringify(jsonSafe(notification.value))) });
    this.record(notification.endpoint, {
      at: notification.receivedAt.getTime(),
      kind: 'notification',
      name: 'notification',
      text,
      path: notification.path,
      code: notification.code,
      values,
      ...(notification.error ? { error: true } : {}),
    });
  }

  private onObservationEnded(observation: StoredObservation, reason: string): void {
    this.recordEvent(
      observation.endpoint,
      'observation ended',
      t('log.observationEnded', { path: observation.path, reason }),
    );
  }

  private onSend(report: SendReport): void {
    this.lastSeen.set(report.endpoint, report.receivedAt.getTime());
    const values: Record<string, ValueJson> = {};
    for (const sent of report.values) {
      try {
        Object.assign(values, valuesByPath(sent.node, sent.path));
      } catch {
        // shown as text below
      }
    }
    this.record(report.endpoint, {
      at: report.receivedAt.getTime(),
      kind: 'event',
      name: 'send',
      text: t('log.send', {
        values: report.values.map((sent) => `${sent.path} = ${short(JSON.stringify(jsonSafe(sent.value)))}`).join(', '),
      }),
      values,
    });
  }

  private recordEvent(endpoint: string, name: string, text: string): void {
    this.record(endpoint, { at: Date.now(), kind: 'event', name, text });
  }

  private record(endpoint: string, entry: LogEntry): void {
    let log = this.logs.get(endpoint);
    if (log) {
      // Most recently active last: the first key is the one to drop when too many devices have logs.
      this.logs.delete(endpoint);
    } else {
      log = [];
      if (this.logs.size >= LOGGED_DEVICES) this.logs.delete(this.logs.keys().next().value as string);
    }
    this.logs.set(endpoint, log);
    log.push(entry);
    if (log.length > LOG_ENTRIES) log.splice(0, log.length - LOG_ENTRIES);
    if (!this.isDeviceWatched(endpoint)) return;
    let pending = this.pendingEntries.get(endpoint);
    if (!pending) this.pendingEntries.set(endpoint, (pending = []));
    pending.push(entry);
    if (pending.length > ENTRIES_PER_MESSAGE) pending.splice(0, pending.length - ENTRIES_PER_MESSAGE);
    this.scheduleFlush();
  }

  private fleetChanged(): void {
    if (this.fleetLeaseUntil < Date.now()) return;
    this.fleetChanges++;
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      this.flush().catch(() => undefined);
    }, FLUSH_MS);
    // A watch never keeps Node-RED (or a test run) alive.
    this.flushTimer.unref();
  }

  private async flush(): Promise<void> {
    for (const [endpoint, entries] of this.pendingEntries) {
      this.publish(deviceTopic(this.configId, endpoint), { serverId: this.configId, endpoint, entries });
    }
    this.pendingEntries.clear();
    if (this.fleetChanges > 0) {
      const changes = this.fleetChanges;
      this.fleetChanges = 0;
      const counts = countsOf(await this.server.listRegistrations(), this.server);
      this.publish(fleetTopic(this.configId), { serverId: this.configId, changes, counts, at: Date.now() });
    }
  }
}

export function countsOf(registrations: Registration[], server: Lwm2mServer): FleetCounts {
  const counts: FleetCounts = { total: registrations.length, awake: 0, sleeping: 0, secured: 0 };
  for (const registration of registrations) {
    const state = registration.queueMode ? server.queueStatus(registration) : undefined;
    if (state === 'awake') counts.awake++;
    else if (state === 'sleeping') counts.sleeping++;
    if (registration.security) counts.secured++;
  }
  const dropped = server.dtlsDroppedRecords();
  if (Object.keys(dropped).length > 0) counts.dtlsDropped = dropped;
  return counts;
}

/** One bootstrap as the browser lists it. */
export interface BootstrapEntry {
  at: number;
  endpoint: string;
  event: 'started' | 'finished' | 'failed';
  text: string;
}

/** The last bootstrap sessions of one bootstrap server (a short ring), published as they happen. */
export class BootstrapWatch {
  private readonly recent: BootstrapEntry[] = [];
  private readonly listeners: [string, (...args: never[]) => void][];

  constructor(
    readonly configId: string,
    readonly bootstrap: BootstrapServer,
    private readonly publish: Publish,
  ) {
    this.listeners = [
      [
        'bootstrapStarted',
        (event: { endpoint: string; peer: { address: string; port: number; secure: boolean } }) =>
          this.add(
            event.endpoint,
            'started',
            t('log.bootstrapStarted', { address: `${event.peer.address}:${event.peer.port}` }),
          ),
      ],
      [
        'bootstrapFinished',
        (event: { endpoint: string; durationMs: number; summary: { servers: { uri?: string }[] } }) =>
          this.add(
            event.endpoint,
            'finished',
            t('log.bootstrapFinished', {
              ms: event.durationMs,
              servers:
                event.summary.servers.map((server) => server.uri ?? '?').join(', ') || t('log.bootstrapNoServer'),
            }),
          ),
      ],
      [
        'bootstrapFailed',
        (event: { endpoint: string; step: string; reason: string; code?: string }) =>
          this.add(
            event.endpoint,
            'failed',
            t('log.bootstrapFailed', { step: event.step, reason: event.reason }) +
              (event.code ? ` (${event.code})` : ''),
          ),
      ],
    ];
    const emitter = bootstrap as unknown as { on(event: string, listener: (...args: never[]) => void): void };
    for (const [event, listener] of this.listeners) emitter.on(event, listener);
  }

  detach(): void {
    const emitter = this.bootstrap as unknown as { off(event: string, listener: (...args: never[]) => void): void };
    for (const [event, listener] of this.listeners) emitter.off(event, listener);
  }

  entries(): BootstrapEntry[] {
    return [...this.recent];
  }

  private add(endpoint: string, event: BootstrapEntry['event'], text: string): void {
    const entry: BootstrapEntry = { at: Date.now(), endpoint, event, text };
    this.recent.push(entry);
    if (this.recent.length > 200) this.recent.shift();
    // Bootstraps are rare next to notifications: each one is published as it happens.
    this.publish(`lwm2m/bootstrap/${this.configId}`, { serverId: this.configId, entry });
  }
}

function where(registration: Registration): string {
  return registration.address.includes(':')
    ? `[${registration.address}]:${registration.port}`
    : `${registration.address}:${registration.port}`;
}

function short(text: string | undefined): string {
  const value = text ?? 'undefined';
  return value.length > 200 ? `${value.slice(0, 199)}…` : value;
}
