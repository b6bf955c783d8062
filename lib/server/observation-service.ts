/**
 * Observations of devices: starting them (several owners share one device observation), storing and indexing them,
 * receiving and decoding their notifications (coalesced by the notification guard), cancelling them, and dropping
 * or moving them with their registration.
 */
import type { IncomingResponse, NotificationListener, ObservationHandle, OutgoingRequest } from '../coap/types';
import { LwM2mPath } from '../model/path';
import type { LwM2mNode } from '../model/types';
import { toPlain } from '../model/values';
import type { ObjectModelLookup } from '../model/types';
import type { Registration } from './registration';
import type { ObservationChange, ObservationStore, StoredObservation } from './stores';
import { NotificationGuard } from './notification-guard';
import type { NotificationGuardOptions } from './notification-guard';
import { LiveObservation, LiveObservationIndex } from './live-observation-index';
import { newObservationId } from './random-ids';
import { sharedObserveRequest, sharedOwners, sharedPaths } from './observation-sharing';

/** One notification, decoded, as the server emits it. */
export interface Notification {
  endpoint: string;
  registrationId: string;
  observationId: string;
  path: string;
  /** Who holds the observation (node ids), so each can pick its own notifications. */
  owners: readonly string[];
  code: string;
  contentFormat?: number;
  /** Observe sequence number from the device. */
  sequence?: number;
  node?: LwM2mNode;
  /** Observe-Composite: path -> node. */
  nodes?: Map<string, LwM2mNode>;
  /** msg-shaped value (for a composite observation: an object keyed by path) (model/values toPlain); absent when `error` is set. */
  value?: unknown;
  /** Why the payload could not be decoded (the observation goes on). */
  error?: string;
  /**
   * Notifications the device sent faster than the observation's pmin (or the server's ceiling) since the previous
   * one that went on, left out in favour of this one, the latest. Absent when none were.
   */
  coalesced?: number;
  receivedAt: Date;
}

/**
 * Why an observation ended: its last owner cancelled it, the device ended it with an error code, its registration
 * ended or was replaced, or the server cancelled it because the device flooded it with notifications.
 */
export type ObservationEndCause = 'cancelled' | 'device-error' | 'registration-ended' | 'flood';

export interface ObservationServiceDeps {
  model?: ObjectModelLookup;
  send(registration: Registration, request: OutgoingRequest): Promise<IncomingResponse>;
  /** The registration an observation belongs to (to tell its device to stop). */
  registrationById(registrationId: string): Promise<Registration | undefined>;
  observe(
    registration: Registration,
    request: OutgoingRequest,
    listener: NotificationListener,
  ): Promise<{ response: IncomingResponse; observation?: ObservationHandle }>;
  decode(payload: Buffer, format: number | undefined, path: LwM2mPath): LwM2mNode;
  /** Observe-Composite notifications: every requested path's node. */
  decodeComposite(payload: Buffer, format: number | undefined, paths: readonly LwM2mPath[]): Map<string, LwM2mNode>;
  /** The request that cancels a stored observation on the device (GET, or FETCH for a composite one). */
  cancelRequest(stored: StoredObservation, paths: readonly LwM2mPath[]): OutgoingRequest;
  notify(notification: Notification): void;
  ended(observation: StoredObservation, reason: string, cause: ObservationEndCause): void;
  /** Coalescing and the flood limit (absent: every notification goes on). */
  guard?: NotificationGuardOptions;
  /** The notification guard acted: coalescing started on an observation, or one was cancelled for flooding. */
  limited?(kind: 'notifications-coalesced' | 'notification-flood', detail: string): void;
  error(error: Error): void;
}

/** No coalescing and no flood limit: every notification goes on. */
const UNGUARDED: NotificationGuardOptions = {
  maxNotificationsPerSecond: 0,
  notificationBurst: 1,
  floodNotificationsPerSecond: 0,
  floodSeconds: 0,
};

/**
 * Observations the server holds on devices (LwM2M Information Reporting). Stored observations are
 * mirrored in memory by (peer, token) so an incoming notification is matched without I/O, including
 * notifications for observations made before a redeploy or restart (adopted from the store).
 */
export class ObservationService {
  private readonly live = new LiveObservationIndex();
  private readonly pending = new Map<string, Promise<unknown>>();
  private readonly guard: NotificationGuard<LiveObservation>;

  constructor(
    private readonly store: ObservationStore,
    private readonly deps: ObservationServiceDeps,
  ) {
    this.guard = new NotificationGuard<LiveObservation>(deps.guard ?? UNGUARDED, {
      pass: (entry, notification, folded) => this.deliver(entry, notification, folded),
      coalescing: (entry, intervalMs) =>
        this.deps.limited?.(
          'notifications-coalesced',
          `${entry.stored.endpoint} ${entry.stored.path}: notifications faster than one per ${Math.round(intervalMs)} ms ` +
            '(its pmin, or the ceiling when none is known) are coalesced: the latest value goes on at each turn',
        ),
      flood: (entry, perSecond) => this.cancelFlood(entry, perSecond),
    });
  }

  /** Mirrors the store in memory (at start). */
  async load(): Promise<void> {
    this.detach();
    for (const stored of await this.store.list()) this.live.add(this.adopted(stored));
    // A store shared with other server instances: their observations are matched here too.
    this.store.watch?.((change) => this.applyChange(change));
  }

  /** Forgets live handles (the endpoint is closing); stored observations stay for the next start. */
  detach(): void {
    for (const entry of this.live.all()) this.guard.release(entry);
    this.live.clear();
  }

  async list(endpoint?: string): Promise<StoredObservation[]> {
    const all = this.live.all().map((entry) => entry.stored);
    return endpoint === undefined ? all : all.filter((stored) => stored.endpoint === endpoint);
  }

  /** Adds `owner` to an existing observation of (registration, path); undefined when there is none. */
  async join(registration: Registration, paths: LwM2mPath[], owner: string): Promise<StoredObservation | undefined> {
    const key = keyOf(paths);
    const pending = this.pending.get(targetKey(registration.id, key));
    if (pending) await pending.catch(() => undefined);
    const entry = this.live.target(registration.id, key);
    if (!entry) return undefined;
    if (!entry.stored.owners.includes(owner)) {
      entry.stored = { ...entry.stored, owners: sharedOwners([...entry.stored.owners, owner]) };
      await this.store.update(entry.stored);
    }
    return entry.stored;
  }

  /**
   * Sends Observe; on success stores the observation with `owner`. `pminSeconds`: the pmin the observation was asked
   * with, if any (notifications faster than it are coalesced).
   */
  async start(
    registration: Registration,
    paths: LwM2mPath[],
    owner: string,
    request: OutgoingRequest,
    pminSeconds?: number,
  ): Promise<{ response: IncomingResponse; observation?: StoredObservation }> {
    const key = keyOf(paths);
    const target = targetKey(registration.id, key);
    // The entry is the observation's listener: notifications that arrive before the observation is stored are
    // held in it until it is, then go on directly (no promise per notification on the hot path). Its stored record
    // is a draft until the device has answered (the token is known then).
    const draft = storedObservation('', registration, key, sharedOwners([owner]), request.accept, '');
    const entry = this.guard.reset(new LiveObservation(this, draft, sharedPaths(paths), true), pminSeconds);
    const attempt = this.deps
      .observe(registration, sharedObserveRequest(request.observe === 0 ? request : { ...request, observe: 0 }), entry)
      .then(async ({ response, observation: handle }) => {
        if (!handle || !response.code.startsWith('2.')) return { response };
        const id = newObservationId();
        const token = handle.token.toString('hex');
        const stored = storedObservation(id, registration, key, entry.stored.owners, request.accept, token);
        entry.stored = stored;
        entry.handle = handle;
        this.live.add(entry);
        await this.store.add(stored);
        entry.release();
        return { response, observation: stored };
      });
    this.pending.set(target, attempt);
    try {
      return await attempt;
    } finally {
      if (this.pending.get(target) === attempt) this.pending.delete(target);
    }
  }

  /** A notification of a live observation: through the guard, except the last one (the device ended it). */
  receive(entry: LiveObservation, notification: IncomingResponse): void {
    if (!entry.indexed) return;
    if (notification.code.startsWith('2.')) {
      this.guard.admit(entry, notification);
      return;
    }
    this.guard.flush(entry); // what was held goes first: the flow sees every value before the end
    this.deliver(entry, notification, 1);
  }

  /** An observation found in the store (made before a restart, or by another instance). */
  private adopted(stored: StoredObservation): LiveObservation {
    return this.guard.reset(new LiveObservation(this, stored, sharedPaths(pathsOf(stored.path)), false));
  }

  /**
   * The pmin this server wrote for an observed target changed (Write-Attributes): notifications are coalesced to it.
   * `undefined` (removed) leaves the ceiling.
   */
  setMinPeriod(registrationId: string, paths: readonly LwM2mPath[], pminSeconds: number | undefined): void {
    const entry = this.live.target(registrationId, keyOf(paths));
    if (entry) this.guard.setMinPeriod(entry, pminSeconds);
  }

  /** The device flooded the observation past the limit: cancelled (a RST answers its next notification). */
  private cancelFlood(entry: LiveObservation, perSecond: number): void {
    const { floodNotificationsPerSecond, floodSeconds } = this.guard.options;
    const reason =
      `flooded: more than ${floodNotificationsPerSecond} notifications a second for ${floodSeconds} s ` +
      `(${perSecond} in the last second)`;
    this.deps.limited?.('notification-flood', `${entry.stored.endpoint} ${entry.stored.path}: ${reason}: cancelled`);
    this.unindex(entry);
    // A cancel request (GET or FETCH with Observe=1), not only a RST: a device flooding NON notifications matches a
    // RST against the last one it sent, which has moved on by the time the RST arrives (Wakaama goes on flooding).
    // With a live handle the RST answers the next notifications meanwhile (passive first, then the request).
    const stop = entry.handle
      ? entry.handle.cancel('active')
      : this.deps
          .registrationById(entry.stored.registrationId)
          .then((registration) =>
            registration
              ? this.deps.send(registration, this.deps.cancelRequest(entry.stored, entry.parsedPaths))
              : undefined,
          );
    void stop.catch(() => undefined);
    this.store
      .remove(entry.stored.id)
      .then(() => this.deps.ended(entry.stored, reason, 'flood'))
      .catch((err: Error) => this.deps.error(err));
  }

  /** Another instance stored or removed an observation: the index follows (nothing is sent to the device). */
  private applyChange(change: ObservationChange): void {
    const current = this.live.byId(change.observation.registrationId, change.observation.id);
    if (change.kind === 'removed') {
      if (!current) return;
      this.unindex(current);
      void current.handle?.cancel('passive').catch(() => undefined);
      return;
    }
    if (current) {
      // Updated in place: a live observation's listener holds this entry.
      this.unindex(current, false);
      current.stored = change.observation;
      current.parsedPaths = sharedPaths(pathsOf(change.observation.path));
      this.live.add(current);
    } else this.live.add(this.adopted(change.observation));
    this.onIndexed?.(change.observation);
  }

  /** Called when an observation made elsewhere is indexed (a notification held for it can now be delivered). */
  onIndexed?: (stored: StoredObservation) => void;

  /** A notification with a token no live CoAP observation holds: ours if the store knows it. */
  adopt(notification: IncomingResponse): NotificationListener | undefined {
    // The entry itself: it is the observation's listener (no closure per adoption).
    return this.live.adoptable(notification.peer.key, notification.token.toString('hex'));
  }

  /** Removes `owner` (every owner when omitted); the device is told once nobody is left. */
  async cancel(registration: Registration, paths: readonly LwM2mPath[], owner?: string): Promise<boolean> {
    const entry = this.live.target(registration.id, keyOf(paths));
    if (!entry) return false;
    const owners = owner === undefined ? [] : entry.stored.owners.filter((item) => item !== owner);
    if (owners.length > 0) {
      entry.stored = { ...entry.stored, owners: sharedOwners(owners) };
      await this.store.update(entry.stored);
      return true;
    }
    this.unindex(entry);
    await this.store.remove(entry.stored.id);
    await this.cancelOnDevice(entry, registration);
    this.deps.ended(entry.stored, 'cancelled', 'cancelled');
    return true;
  }

  async releaseOwner(
    owner: string,
    registrationOf: (stored: StoredObservation) => Promise<Registration | undefined>,
  ): Promise<void> {
    for (const entry of this.live.all()) {
      if (!entry.stored.owners.includes(owner)) continue;
      const registration = await registrationOf(entry.stored);
      if (registration) await this.cancel(registration, entry.parsedPaths, owner);
      else await this.forget(entry, 'registration gone', 'registration-ended');
    }
  }

  /** The registration ended or was replaced: its observations are gone on the device. */
  async dropRegistration(registration: Registration, reason: string): Promise<StoredObservation[]> {
    const dropped = await this.store.removeByRegistration(registration.id);
    const byId = new Map(dropped.map((stored) => [stored.id, stored]));
    for (const entry of this.live.ofRegistration(registration.id)) {
      byId.set(entry.stored.id, entry.stored);
      this.unindex(entry);
      // Passive: no request to a device that has gone; a late notification gets a RST.
      void entry.handle?.cancel('passive').catch(() => undefined);
    }
    for (const stored of byId.values()) this.deps.ended(stored, reason, 'registration-ended');
    return [...byId.values()];
  }

  /** The device's address changed (Update from a new NAT binding): match its tokens at the new peer. */
  async movePeer(registration: Registration): Promise<void> {
    for (const entry of this.live.ofRegistration(registration.id)) {
      this.unindex(entry, false);
      entry.stored = { ...entry.stored, peerKey: registration.peerKey };
      this.live.add(entry);
      await this.store.update(entry.stored);
    }
  }

  private async forget(entry: LiveObservation, reason: string, cause: ObservationEndCause): Promise<void> {
    this.unindex(entry);
    await this.store.remove(entry.stored.id);
    void entry.handle?.cancel('passive').catch(() => undefined);
    this.deps.ended(entry.stored, reason, cause);
  }

  private async cancelOnDevice(entry: LiveObservation, registration: Registration): Promise<void> {
    try {
      if (entry.handle) {
        await entry.handle.cancel('active');
      } else {
        await this.deps.send(registration, this.deps.cancelRequest(entry.stored, entry.parsedPaths));
      }
    } catch {
      // The device did not answer the cancel: its next notification gets a RST (passive cancel).
      void entry.handle?.cancel('passive').catch(() => undefined);
    }
  }

  private deliver(entry: LiveObservation, response: IncomingResponse, folded: number): void {
    if (!entry.indexed) return;
    const { stored } = entry;
    const notification: Notification = {
      endpoint: stored.endpoint,
      registrationId: stored.registrationId,
      observationId: stored.id,
      path: stored.path,
      owners: stored.owners,
      code: response.code,
      contentFormat: response.contentFormat ?? stored.contentFormat,
      sequence: response.observe,
      receivedAt: new Date(),
    };
    if (folded > 1) notification.coalesced = folded - 1;
    if (!response.code.startsWith('2.')) {
      notification.error = `the device ended the observation with ${response.code}`;
      this.deps.notify(notification);
      void this.forget(entry, `device answered ${response.code}`, 'device-error').catch((err: Error) =>
        this.deps.error(err),
      );
      return;
    }
    try {
      if (entry.parsedPaths.length === 1) {
        const path = entry.parsedPaths[0];
        const node = this.deps.decode(response.payload, notification.contentFormat, path);
        notification.node = node;
        notification.value = this.deps.model ? toPlain(node, path, this.deps.model) : undefined;
      } else {
        const nodes = this.deps.decodeComposite(response.payload, notification.contentFormat, entry.parsedPaths);
        notification.nodes = nodes;
        notification.value = this.deps.model ? plainByPath(nodes, this.deps.model) : undefined;
      }
    } catch (err) {
      notification.error = `notification could not be decoded: ${(err as Error).message}`;
    }
    this.deps.notify(notification);
  }

  /** Takes the entry out of the indexes; `ended` (the default) also drops what its guard holds. */
  private unindex(entry: LiveObservation, ended = true): void {
    if (ended) this.guard.release(entry);
    this.live.remove(entry);
  }
}

/** The key of an observation target: its path, or its paths joined by commas (Observe-Composite). */
export function keyOf(paths: readonly LwM2mPath[]): string {
  if (paths.length === 1) return paths[0].toString(); // one shared string, not a copy per observation
  return paths.map((path) => path.toString()).join(',');
}

function pathsOf(key: string): LwM2mPath[] {
  return key.split(',').map((path) => LwM2mPath.parse(path));
}

/** Composite values in msg shape: `{ "/3303/0/5700": 21.5, "/3/0/9": 87 }`. */
export function plainByPath(nodes: ReadonlyMap<string, LwM2mNode>, model: ObjectModelLookup): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const [path, node] of nodes) values[path] = toPlain(node, LwM2mPath.parse(path), model);
  return values;
}

/**
 * An observation's stored record. contentFormat only when set (no `delete`: a slow dictionary), and in the literal:
 * added afterwards it would cost every stored observation an out-of-object property array.
 */
function storedObservation(
  id: string,
  registration: Registration,
  path: string,
  owners: readonly string[],
  contentFormat: number | undefined,
  token: string,
): StoredObservation {
  const { id: registrationId, endpoint, peerKey } = registration;
  const createdAt = Date.now();
  return contentFormat !== undefined
    ? { id, registrationId, endpoint, path, token, peerKey, owners, createdAt, contentFormat }
    : { id, registrationId, endpoint, path, token, peerKey, owners, createdAt };
}

function targetKey(registrationId: string, path: string): string {
  return `${registrationId}|${path}`;
}
