/**
 * The Registration interface (/rd): Register, Update and De-register from devices, checked against their credentials
 * and the admission limits, kept in the registration store, and expired when their lifetime runs out.
 */
import { makeUintOption } from '../coap/codec';
import { StringTable } from '../coap/string-table';
import type { IncomingRequest, OutgoingResponse } from '../coap/types';
import { flatString } from '../transport/peer';
import { newRegistrationId } from './random-ids';
import { ContentFormat } from '../content/types';
import { ContentCodecError } from '../content/types';
import { ExpiryWheel } from './expiry-wheel';
import { RegistrationAdmission } from './registration-admission';
import type { AdmissionRefusal, RegistrationLimits } from './registration-admission';
import type { ParsedObjectLinks, ParsedRegisterQuery, Registration } from './registration';
import { RegistrationError, parseObjectLinks, parseRegistrationQuery } from './registration';
import type { SecurityStore } from './security';
import { SecurityCheckError, authorizeRegister, checkSameChannel } from './security';
import type { RegistrationStore, StoreOutage } from './stores';
import { StoreUnreachableError } from './stores';

export interface RegistrationServiceOptions extends Partial<RegistrationLimits> {
  /** Seconds a registration is kept beyond its lifetime before it expires (network delays, clock drift). */
  lifetimeGraceSeconds: number;
  /** Lifetime assumed when a Register carries none (LwM2M default: 86400 s). */
  defaultLifetimeSeconds: number;
}

export interface RegistrationEvents {
  registered(registration: Registration, replaced?: Registration): void;
  updated(registration: Registration, previous: Registration): void;
  deregistered(registration: Registration): void;
  expired(registration: Registration): void;
  /** A Register of a new endpoint was refused by the limits (answered 5.03). */
  refused?(endpoint: string, address: string, refusal: AdmissionRefusal): void;
  /** Expiry could not reach the store (tried again): at most one report a minute. */
  expiryFailed(error: Error): void;
}

/** Max-Age (s) of the 5.03 a device gets while the store cannot be reached: short outages (a Redis restart) are common. */
const STORE_UNREACHABLE_MAX_AGE_S = 10;

/**
 * The Registration interface (LwM2M Core §6.2 / Transport §6.2): Register (POST /rd), Update
 * (POST /rd/{id}), De-register (DELETE /rd/{id}), and lifetime expiry. Store I/O for one endpoint name
 * is serialised so a Register racing an Update of the same device cannot interleave.
 */
export class RegistrationService {
  private readonly wheel = new ExpiryWheel();
  /**
   * Not a Map: one entry comes and goes per Update, the pattern that keeps a Map's promoted hash tables and the
   * finished Updates in them alive through scavenges (see StringTable).
   */
  private readonly chains = new StringTable<Promise<unknown>>();
  private sweepTimer?: NodeJS.Timeout;
  /** When the whole store was last read for expired entries (a store shared with other instances). */
  private lastFullScan = 0;
  private readonly admission: RegistrationAdmission;
  /** New endpoints admitted whose registration is still being stored: counted against the cap already. */
  private admitting = 0;
  /** The sweep running now: sweeps never overlap (a slow store must not pile them up). */
  private sweeping?: Promise<void>;
  /**
   * Expiry deferred by a store outage, by registration id, for the registration as it was then (`lastUpdateAt`):
   * an Update since supersedes it. See `afterOutage`.
   */
  private readonly grace = new Map<string, { lastUpdateAt: number; until: number }>();
  private stopRestoredWatch?: () => void;
  /** Outages whose grace is being granted (see `afterOutage`): expiry waits for it. */
  private restoring = 0;
  private lastFailureReport = 0;

  constructor(
    private readonly store: RegistrationStore,
    private readonly options: RegistrationServiceOptions,
    private readonly events: RegistrationEvents,
    /** Device credentials: who may register as which endpoint (absent: anyone, over any channel). */
    private readonly security?: SecurityStore,
  ) {
    this.admission = new RegistrationAdmission({
      maxRegistrations: options.maxRegistrations ?? 0,
      newRegistrationsPerAddressPerSecond: options.newRegistrationsPerAddressPerSecond ?? 0,
      newRegistrationsBurstPerAddress: options.newRegistrationsBurstPerAddress ?? 1,
    });
  }

  /** Rebuilds the expiry index from the store and starts sweeping (after a restart or redeploy). */
  async start(): Promise<void> {
    this.wheel.clear();
    this.grace.clear();
    const registrations = await this.store.list();
    // An outage recorded in a shared store before this instance started: its devices get the same grace here.
    const outage = this.store.lastOutage?.();
    if (outage) this.deferForOutage(registrations, outage);
    for (const registration of registrations) this.wheel.schedule(registration.id, this.expiresAt(registration));
    this.stopRestoredWatch?.();
    this.stopRestoredWatch = this.store.onRestored?.((restored) => void this.afterOutage(restored));
    // An interval sweep is skipped while one still runs; sweep() never rejects.
    this.sweepTimer = setInterval(() => void (this.sweeping ?? this.sweep()), 1000);
    this.sweepTimer.unref();
    await this.sweep();
  }

  stop(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    this.stopRestoredWatch?.();
    this.stopRestoredWatch = undefined;
    this.wheel.clear();
    this.admission.clear();
    this.grace.clear();
  }

  /** When the registration expires: its lifetime (plus grace) after its last Update, or later after a store outage. */
  expiresAt(registration: Registration): number {
    // A lifetime the server wrote counts from that Write (the device answered it) when it came after the last Update.
    const writtenAt = registration.lifetimeWrittenAt;
    const from =
      writtenAt !== undefined && writtenAt > registration.lastUpdateAt ? writtenAt : registration.lastUpdateAt;
    const own = from + (registration.lifetime + this.options.lifetimeGraceSeconds) * 1000;
    const deferred = this.grace.get(registration.id);
    return deferred !== undefined && deferred.lastUpdateAt === registration.lastUpdateAt
      ? Math.max(own, deferred.until)
      : own;
  }

  /**
   * The store is back after an outage. Every registration that was still alive when it went away is treated as
   * if its device had updated the moment the store was back: it expires one lifetime (plus grace) after that at
   * the earliest. Why: a silence that overlaps an outage says little about the device. Its Update may have gone
   * to an instance that died meanwhile (the Redis store keeps an Update taken during an outage in that instance's
   * memory until Redis is back), a Register in the meantime was answered 5.03, and a client refused once backs
   * off before it tries again. One lifetime after the store is back is the first moment silence proves a device
   * gone: a live device talks within its lifetime. A device that updated during the outage, or updates or
   * registers again after it, is on its own clock; one that stays silent expires at `outage.to + lifetime +
   * grace`. The cost: a device that really died during the outage is kept up to one lifetime longer, and a
   * long-lived registration's expiry moves by at most the outage's length.
   */
  private async afterOutage(outage: StoreOutage): Promise<void> {
    // From the moment the store is told back (synchronously): a sweep meanwhile would expire without the grace.
    this.restoring++;
    try {
      const registrations = await this.store.list();
      this.deferForOutage(registrations, outage);
      for (const registration of registrations) this.wheel.schedule(registration.id, this.expiresAt(registration));
    } catch (err) {
      this.reportFailure(err as Error);
    } finally {
      this.restoring--;
    }
  }

  private deferForOutage(registrations: Registration[], outage: StoreOutage): void {
    for (const registration of registrations) {
      const due = this.expiresAt(registration);
      // Expired before the store went away (not yet swept), or updated after it was back: not concerned.
      if (due < outage.from || registration.lastUpdateAt >= outage.to) continue;
      const until = outage.to + (registration.lifetime + this.options.lifetimeGraceSeconds) * 1000;
      if (until > due) this.grace.set(registration.id, { lastUpdateAt: registration.lastUpdateAt, until });
    }
  }

  /** Handles a request below /rd; returns the CoAP response. */
  async handle(request: IncomingRequest): Promise<OutgoingResponse> {
    try {
      const segments = request.pathSegments;
      if (segments.length === 1 && request.method === 'POST') return await this.register(request);
      if (segments.length === 2 && request.method === 'POST') return await this.update(request, segments[1]);
      if (segments.length === 2 && request.method === 'DELETE') return await this.deregister(request, segments[1]);
      if (segments.length <= 2) return { code: '4.05' };
      return { code: '4.04' };
    } catch (err) {
      if (err instanceof RegistrationError) return errorResponse(err.code, err.message);
      if (err instanceof ContentCodecError) return errorResponse('4.00', err.message);
      if (err instanceof SecurityCheckError) return errorResponse('4.03', err.message);
      if (err instanceof StoreUnreachableError) return storeUnreachableResponse();
      throw err;
    }
  }

  private async register(request: IncomingRequest): Promise<OutgoingResponse> {
    const query = parseRegistrationQuery(request.query, true);
    const endpoint = this.security
      ? await authorizeRegister(this.security, query.endpoint, request.peer)
      : (query.endpoint ?? request.peer.security?.identity);
    if (endpoint === undefined) throw new RegistrationError('the endpoint name (ep) is missing', '4.00');
    checkLinkFormat(request);
    const links = parseObjectLinks(request.payload);
    const known =
      this.store.getByEndpointSync !== undefined
        ? this.store.getByEndpointSync(endpoint)
        : await this.store.getByEndpoint(endpoint);
    if (known !== undefined) return this.addRegistration(request, endpoint, query, links);
    // A new endpoint: within the cap and its address's budget, or refused before anything is stored.
    const held = (this.options.maxRegistrations ?? 0) > 0 ? (await this.store.size()) + this.admitting : 0;
    const refusal = this.admission.admit(request.peer.address, held);
    if (refusal !== undefined) {
      this.events.refused?.(endpoint, request.peer.address, refusal);
      return refusedResponse(refusal);
    }
    this.admitting++;
    try {
      return await this.addRegistration(request, endpoint, query, links);
    } finally {
      this.admitting--;
    }
  }

  private async addRegistration(
    request: IncomingRequest,
    endpoint: string,
    query: ParsedRegisterQuery,
    links: ParsedObjectLinks,
  ): Promise<OutgoingResponse> {
    const now = Date.now();
    const registration: Registration = {
      id: newRegistrationId(),
      // Kept for the registration's life: flat copies, not ropes or slices of the request's strings.
      endpoint: flatString(endpoint),
      lifetime: query.lifetime ?? this.options.defaultLifetimeSeconds,
      lwm2mVersion: query.lwm2mVersion ?? '1.0',
      binding: query.binding ?? 'U',
      queueMode: query.queueMode ?? false,
      address: request.peer.address,
      port: request.peer.port,
      peerKey: flatString(request.peer.key),
      rootPath: links.rootPath,
      objects: links.objects,
      supportedContentFormats: links.supportedContentFormats,
      additionalAttributes:
        Object.keys(query.additionalAttributes).length === 0 ? NO_ATTRIBUTES : query.additionalAttributes,
      registeredAt: now,
      lastUpdateAt: now,
    };
    // Optional keys are added only when present, never deleted: `delete` turns the object into a slow
    // dictionary (about 800 bytes more per device at 100k devices, and slower copies on Update).
    if (query.smsNumber !== undefined) registration.smsNumber = query.smsNumber;
    if (request.peer.security !== undefined) registration.security = request.peer.security;

    const replaced = await this.serialised(`ep:${endpoint}`, () => this.store.add(registration));
    this.wheel.schedule(registration.id, this.expiresAt(registration));
    // Told once the 2.01 is on its way (Leshan does the same): a listener's first request must not reach the
    // device before its registration is confirmed; Wakaama ignores requests until it has the 2.01.
    setImmediate(() => this.events.registered(registration, replaced));
    return { code: '2.01', locationPath: ['rd', registration.id] };
  }

  private async update(request: IncomingRequest, registrationId: string): Promise<OutgoingResponse> {
    return this.serialised(`id:${registrationId}`, async () => {
      const previous = await this.store.getById(registrationId);
      if (!previous) return errorResponse('4.04', `no registration ${registrationId}`);
      checkSameChannel(previous, request.peer, previous.endpoint);
      const query = parseRegistrationQuery(request.query, false, previous.lwm2mVersion);
      // A lifetime the device states again replaces one the server wrote (and the mark that said so).
      const next: Registration =
        query.lifetime !== undefined && previous.lifetimeSource !== undefined
          ? { ...withoutWrittenLifetime(previous), lastUpdateAt: Date.now() }
          : { ...previous, lastUpdateAt: Date.now() };
      if (query.lifetime !== undefined) next.lifetime = query.lifetime;
      if (query.binding !== undefined) next.binding = query.binding;
      if (query.queueMode !== undefined) next.queueMode = query.queueMode;
      if (query.smsNumber !== undefined) next.smsNumber = query.smsNumber;
      if (Object.keys(query.additionalAttributes).length > 0) {
        next.additionalAttributes = { ...previous.additionalAttributes, ...query.additionalAttributes };
      }
      if (request.payload.length > 0) {
        checkLinkFormat(request);
        const links = parseObjectLinks(request.payload);
        next.objects = links.objects;
        if (links.rootPath !== '' || links.supportedContentFormats.length > 0) {
          next.rootPath = links.rootPath;
          next.supportedContentFormats = links.supportedContentFormats;
        }
      }
      // A NAT may have re-mapped the device: requests must follow it to where the Update came from.
      next.address = request.peer.address;
      next.port = request.peer.port;
      if (request.peer.key !== previous.peerKey) next.peerKey = flatString(request.peer.key);
      if (!(await this.store.update(next))) return errorResponse('4.04', `no registration ${registrationId}`);
      const previousExpiry = this.expiresAt(previous);
      this.grace.delete(next.id);
      this.wheel.reschedule(next.id, previousExpiry, this.expiresAt(next));
      setImmediate(() => this.events.updated(next, previous));
      return { code: '2.04' };
    });
  }

  private async deregister(request: IncomingRequest, registrationId: string): Promise<OutgoingResponse> {
    const removed = await this.serialised(`id:${registrationId}`, async () => {
      const current = await this.store.getById(registrationId);
      if (!current) return undefined;
      checkSameChannel(current, request.peer, current.endpoint);
      return this.store.remove(registrationId);
    });
    if (!removed) return errorResponse('4.04', `no registration ${registrationId}`);
    this.grace.delete(registrationId);
    setImmediate(() => this.events.deregistered(removed)); // in order with the deferred registered/updated
    return { code: '2.02' };
  }

  /**
   * The server wrote `lifetime` into its own account on the device (/1/x/1) and the device answered 2.04: the
   * registration expires on it from now on (until the device states a lifetime in an Update or Register). A device
   * should send an Update with the new `lt` then; some never do (Wakaama), and would be expired on the old one.
   * Returns the registration as changed, or undefined when it is gone.
   */
  adoptWrittenLifetime(
    registrationId: string,
    lifetime: number,
    writtenAt = Date.now(),
  ): Promise<Registration | undefined> {
    return this.serialised(`id:${registrationId}`, async () => {
      const previous = await this.store.getById(registrationId);
      if (!previous) return undefined;
      const next: Registration = { ...previous, lifetime, lifetimeSource: 'written', lifetimeWrittenAt: writtenAt };
      if (!(await this.store.update(next))) return undefined;
      this.wheel.reschedule(next.id, this.expiresAt(previous), this.expiresAt(next));
      setImmediate(() => this.events.updated(next, previous));
      return next;
    });
  }

  /**
   * Expires every registration whose lifetime (plus grace) has passed. Never rejects: a store that fails is
   * reported (`expiryFailed`) and the registrations concerned are tried again. While the store cannot be reached
   * (or has not been read back since), nothing expires: nothing can be claimed, and what this instance holds may
   * be out of date; see `afterOutage` for what follows.
   */
  async sweep(now = Date.now()): Promise<void> {
    while (this.sweeping) await this.sweeping;
    const sweeping = this.sweepOnce(now).catch((err: Error) => this.reportFailure(err));
    this.sweeping = sweeping;
    try {
      await sweeping;
    } finally {
      if (this.sweeping === sweeping) this.sweeping = undefined;
    }
  }

  private async sweepOnce(now: number): Promise<void> {
    this.admission.sweep();
    if (!this.storeReachable()) return;
    // A shared store also holds the registrations other instances took, which this wheel never saw: if
    // their instance goes away, someone must expire them. Every instance reads the whole store now and
    // then; the store's atomic removal makes one of them do it.
    if (this.store.removeIfUnchanged !== undefined && now - this.lastFullScan >= FULL_SCAN_INTERVAL_MS) {
      this.lastFullScan = now;
      for (const registration of await this.store.list())
        this.wheel.schedule(registration.id, this.expiresAt(registration));
    }
    let failure: Error | undefined;
    for (const id of this.wheel.takeDue(now)) {
      // Gone while sweeping, or a removal failed: the rest waits in the wheel for the next sweep.
      if (failure !== undefined || !this.storeReachable()) {
        this.wheel.schedule(id, now);
        continue;
      }
      try {
        const expired = await this.expireIfDue(id, now);
        if (expired) setImmediate(() => this.events.expired(expired));
      } catch (err) {
        failure = err as Error;
        this.wheel.schedule(id, now);
      }
    }
    if (failure !== undefined) this.reportFailure(failure);
  }

  /** Read afresh each time: the store may go away in the middle of a sweep. */
  private storeReachable(): boolean {
    return this.store.reachable !== false && this.restoring === 0;
  }

  private expireIfDue(id: string, now: number): Promise<Registration | undefined> {
    return this.serialised(`id:${id}`, async () => {
      const registration = await this.store.getById(id);
      if (!registration) {
        this.grace.delete(id);
        return undefined;
      }
      if (this.expiresAt(registration) > now) {
        this.wheel.schedule(id, this.expiresAt(registration));
        return undefined;
      }
      this.grace.delete(id);
      if (this.store.removeIfUnchanged !== undefined)
        return this.store.removeIfUnchanged(id, registration.lastUpdateAt, registration.lifetimeWrittenAt);
      return this.store.remove(id);
    });
  }

  private reportFailure(error: Error): void {
    const now = Date.now();
    if (now - this.lastFailureReport < FAILURE_REPORT_INTERVAL_MS) return;
    this.lastFailureReport = now;
    this.events.expiryFailed(
      new Error(`expiry could not reach the registration store (tried again): ${error.message}`),
    );
  }

  private serialised<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.chains.get(key);
    // Most Updates find no chain for their device: the task starts at once (no resolved promise to wait on), and the
    // chain ends in the handler that settles it (two promises and a closure less per Update than a separate step).
    const next = previous === undefined ? startTask(task) : previous.then(task, task);
    const done = (): void => {
      if (this.chains.get(key) === settled) this.chains.delete(key);
    };
    const settled: Promise<void> = next.then(done, done);
    this.chains.set(key, settled);
    return next;
  }
}

/** Runs `task` now; a store that throws instead of rejecting rejects here as it would in a promise chain. */
function startTask<T>(task: () => Promise<T>): Promise<T> {
  try {
    return task();
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}

const FULL_SCAN_INTERVAL_MS = 15_000;
const FAILURE_REPORT_INTERVAL_MS = 60_000;

/** Most devices send no other registration parameters: one shared, frozen empty set for all of them. */
const NO_ATTRIBUTES: Record<string, string> = Object.freeze({}) as Record<string, string>;

function checkLinkFormat(request: IncomingRequest): void {
  if (request.contentFormat !== undefined && request.contentFormat !== ContentFormat.LINK_FORMAT) {
    throw new RegistrationError(
      `the registration payload must be link-format (40), not content format ${request.contentFormat}`,
      '4.00',
    );
  }
}

/** The registration without the marks of a written lifetime (a new object: `delete` would make it a slow dictionary). */
function withoutWrittenLifetime(registration: Registration): Registration {
  const { lifetimeSource: _source, lifetimeWrittenAt: _writtenAt, ...rest } = registration;
  return rest;
}

/** 5.03 Service Unavailable with Max-Age (RFC 7252 §5.9.3.4: when to try again) and the reason. */
function serviceUnavailable(maxAgeSeconds: number, reason: string): OutgoingResponse {
  return {
    code: '5.03',
    options: [makeUintOption('Max-Age', maxAgeSeconds)],
    payload: Buffer.from(reason, 'utf8'),
  };
}

function refusedResponse(refusal: AdmissionRefusal): OutgoingResponse {
  return serviceUnavailable(refusal.retryAfterSeconds, refusal.reason);
}

/**
 * The store cannot be reached (Redis down): nothing was stored. 5.03 Service Unavailable, with a Max-Age for when
 * to try again: the device did nothing wrong, and 5.00 would say the server broke. The diagnostic names the store
 * but not where it is (the device is not told about the server's infrastructure; the node's status and log say
 * which store, and why).
 */
function storeUnreachableResponse(): OutgoingResponse {
  return serviceUnavailable(STORE_UNREACHABLE_MAX_AGE_S, STORE_UNREACHABLE_DIAGNOSTIC);
}

const STORE_UNREACHABLE_DIAGNOSTIC = "the server's registration store is unreachable: try again later";

function errorResponse(code: string, reason: string): OutgoingResponse {
  // A diagnostic payload (RFC 7252 §5.5.2) tells a developer at the device side why.
  return { code, payload: Buffer.from(reason, 'utf8') };
}
