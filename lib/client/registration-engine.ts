/**
 * The client's registration with its LwM2M server (LwM2M Core §6.2): Register with retries, Update before
 * the lifetime ends or when objects, lifetime or binding change, De-register, Disable, the simulated
 * reboot, and queue mode (reachable for a while after each exchange, asleep otherwise).
 */
import { CoapRequestError, type IncomingResponse } from '../coap/types';
import { ContentFormat } from '../content/types';
import type { ServerConnection } from './connection';
import type { DeviceObjects } from './device-objects';
import { ClientError } from './errors';
import type { ClientFormats } from './formats';
import type { ClientLifecycle } from './lifecycle';
import { registrationLinks } from './links';
import type { Notifier } from './notifier';
import {
  emitError,
  normaliseRoot,
  type ClientCounters,
  type ClientEvents,
  type Lwm2mClientOptions,
  type RetryPolicy,
} from './options';
import type { ClientTimers } from './timers';

/** What the registration engine asks of the rest of the client. */
export interface RegistrationHost {
  /** Registration failed for good and a Bootstrap-Server is configured: bootstrap (LwM2M 1.1 §6.1). */
  bootstrap(reason: string): void;
}

/** The parts of the client the registration engine works with. */
export interface RegistrationParts {
  lifecycle: ClientLifecycle;
  timers: ClientTimers;
  connection: ServerConnection;
  objects: DeviceObjects;
  formats: ClientFormats;
  notifier: Notifier;
  counters: ClientCounters;
  events: ClientEvents;
}

export class RegistrationEngine {
  private readonly lifecycle: ClientLifecycle;
  private readonly timers: ClientTimers;
  private readonly connection: ServerConnection;
  private readonly objects: DeviceObjects;
  private readonly formats: ClientFormats;
  private readonly notifier: Notifier;
  private readonly counters: ClientCounters;
  private readonly events: ClientEvents;
  private readonly retry: RetryPolicy;
  private location: string[] | undefined;
  private registeredLifetime = 0;
  private registeredBinding = '';
  private objectsChanged = false;
  private attempts = 0;
  private registerInFlight = false;
  private updateInFlight = false;
  private updateAgain = false;
  private hasRegistered = false;

  constructor(
    private readonly options: Lwm2mClientOptions,
    parts: RegistrationParts,
    private readonly host: RegistrationHost,
  ) {
    this.lifecycle = parts.lifecycle;
    this.timers = parts.timers;
    this.connection = parts.connection;
    this.objects = parts.objects;
    this.formats = parts.formats;
    this.notifier = parts.notifier;
    this.counters = parts.counters;
    this.events = parts.events;
    this.retry = {
      initialDelayMs: 1000,
      maxDelayMs: 60_000,
      // LwM2M 1.1 §6.1: bootstrap after the registration retry sequence (Communication Retry Count 5)
      maxAttempts: options.bootstrapUri !== undefined ? 5 : Infinity,
      ...options.registerRetry,
    };
  }

  /** The registration's location (`/rd/5a3f`) while registered. */
  get registrationLocation(): string | undefined {
    return this.location === undefined ? undefined : '/' + this.location.join('/');
  }

  /** Forgets the registration (the server will not hear from it again). */
  forgetLocation(): void {
    this.location = undefined;
  }

  /** The next Register starts a fresh retry sequence. */
  resetAttempts(): void {
    this.attempts = 0;
  }

  /** Registers (unless a Register is under way), retrying per `registerRetry`; the state is 'registering'. */
  register(): void {
    // after a bootstrap the socket to the new server is opened by the Register itself
    if (this.registerInFlight || (this.connection.endpoint === undefined && this.options.bootstrapUri === undefined))
      return;
    this.timers.clear('update');
    this.timers.clear('retry');
    this.registerInFlight = true;
    // What doRegister does not catch itself (a 'registered' listener that throws) is the client's 'error', not an
    // unhandled rejection that would end the process.
    this.doRegister()
      .finally(() => (this.registerInFlight = false))
      .catch((err: unknown) => emitError(this.events, err instanceof Error ? err : new Error(String(err))));
  }

  private async doRegister(): Promise<void> {
    const o = this.options;
    if (this.connection.endpoint === undefined) {
      try {
        await this.connection.open();
      } catch (err) {
        if (this.lifecycle.state === 'registering') this.registrationFailed(err as Error);
        return;
      }
      if (this.lifecycle.state !== 'registering') return;
    }
    const query = [`ep=${o.endpointName}`, `lt=${this.currentLifetime()}`, `lwm2m=${o.lwm2mVersion}`];
    const binding = this.currentBinding();
    if (o.lwm2mVersion === '1.0') query.push(`b=${o.queueMode && !binding.includes('Q') ? binding + 'Q' : binding}`);
    else {
      query.push(`b=${binding}`);
      if (o.queueMode) query.push('Q');
    }
    const payload = Buffer.from(this.registrationPayload(), 'utf8');
    this.objectsChanged = false;
    this.awake();
    let response: IncomingResponse;
    try {
      response = await this.connection.requireEndpoint().request(this.connection.serverPeer, {
        method: 'POST',
        pathSegments: ['rd'],
        query,
        contentFormat: ContentFormat.LINK_FORMAT,
        payload,
        timeoutMs: o.registrationTimeoutMs,
      });
    } catch (err) {
      this.registrationFailed(err as Error);
      return;
    }
    if (this.lifecycle.state !== 'registering') return;
    if (response.code !== '2.01') {
      const reason = response.payload.length > 0 ? `: ${response.payload.toString('utf8')}` : '';
      this.registrationFailed(new ClientError(response.code, `Register refused with ${response.code}${reason}`));
      return;
    }
    this.location = response.options
      .filter((option) => option.name === 'Location-Path')
      .map((option) => option.value.toString('utf8'));
    if (this.location.length === 0) this.location = ['rd'];
    this.lifecycle.state = 'registered';
    this.attempts = 0;
    this.registeredLifetime = Number(query[1].slice(3));
    this.registeredBinding = binding;
    this.counters.registrations++;
    const reRegistration = this.hasRegistered;
    this.hasRegistered = true;
    this.scheduleUpdate();
    this.awake();
    // Waiters first: their continuations run after the listeners anyway, and a listener that throws cannot keep
    // start() from resolving.
    this.lifecycle.settleWaiters();
    this.events.emit('registered', { location: this.registrationLocation!, reRegistration });
    if (this.objectsChanged) this.deferUpdate();
  }

  private registrationFailed(err: Error): void {
    if (this.lifecycle.state !== 'registering') return;
    // No answer over DTLS: the server may have lost our session (a restart); a new handshake is the cure.
    if (err instanceof CoapRequestError && err.reason === 'timeout') this.connection.newDtlsSession();
    this.counters.registrationFailures++;
    this.attempts++;
    if (this.events.listenerCount('registrationFailed') > 0) this.events.emit('registrationFailed', err);
    if (this.attempts >= this.retry.maxAttempts) {
      // LwM2M 1.1 §6.1: after the registration retry sequence, bootstrap (unless /1/x/16 says not to)
      if (
        this.options.bootstrapUri !== undefined &&
        this.objects.get(`/1/${this.connection.serverInstanceId}/16`) !== false
      ) {
        this.host.bootstrap(`registration failed: ${err.message}`);
        return;
      }
      this.lifecycle.state = 'failed';
      this.lifecycle.settleWaiters(new Error(`${this.options.endpointName}: registration failed: ${err.message}`));
      return;
    }
    const base = Math.min(this.retry.maxDelayMs, this.retry.initialDelayMs * 2 ** (this.attempts - 1));
    const delay = base * (0.5 + this.options.random() * 0.5);
    this.timers.set('retry', delay, () => this.register());
  }

  private scheduleUpdate(): void {
    const lifetime = this.registeredLifetime;
    const margin = Math.max(lifetime * 0.1, Math.min(this.options.updateMarginSeconds, lifetime * 0.5));
    this.timers.set('update', (lifetime - margin) * 1000, () => void this.update());
  }

  /** An Update soon (once, however often asked before it goes out), when registered. */
  deferUpdate(): void {
    if (this.lifecycle.state !== 'registered' || this.timers.has('deferredUpdate')) return;
    this.timers.set('deferredUpdate', 0, () => void this.update());
  }

  /** Sends an Update now (with lt= / b= / the objects when they changed); registers again when it fails. */
  async update(): Promise<void> {
    if (this.lifecycle.state !== 'registered' || this.location === undefined) return;
    if (this.updateInFlight) {
      this.updateAgain = true;
      return;
    }
    this.updateInFlight = true;
    this.timers.clear('update');
    this.awake();
    const lifetime = this.currentLifetime();
    const binding = this.currentBinding();
    const query: string[] = [];
    if (lifetime !== this.registeredLifetime) query.push(`lt=${lifetime}`);
    if (binding !== this.registeredBinding) query.push(`b=${binding}`);
    const withObjects = this.objectsChanged;
    this.objectsChanged = false;
    const location = this.location;
    let response: IncomingResponse | undefined;
    try {
      response = await this.connection.requireEndpoint().request(this.connection.serverPeer, {
        method: 'POST',
        pathSegments: location,
        query,
        contentFormat: withObjects ? ContentFormat.LINK_FORMAT : undefined,
        payload: withObjects ? Buffer.from(this.registrationPayload(), 'utf8') : undefined,
        timeoutMs: this.options.registrationTimeoutMs,
      });
    } catch {
      response = undefined;
    } finally {
      this.updateInFlight = false;
    }
    if (this.lifecycle.state !== 'registered' || this.location !== location) return;
    if (response?.code === '2.04') {
      this.registeredLifetime = lifetime;
      this.registeredBinding = binding;
      this.counters.updates++;
      this.scheduleUpdate();
      this.awake();
      this.events.emit('updated', { location: this.registrationLocation! });
      if (this.updateAgain) {
        this.updateAgain = false;
        void this.update();
      }
      return;
    }
    // 4.04: the server forgot us; anything else (or no answer): register again
    this.updateAgain = false;
    if (withObjects) this.objectsChanged = true;
    this.counters.reRegistrations++;
    this.notifier.clear('registration lost');
    this.location = undefined;
    this.lifecycle.state = 'registering';
    this.attempts = 0;
    this.register();
  }

  /** De-registers when registered; the location is forgotten whatever the answer. */
  async sendDeregister(timeoutMs: number | undefined): Promise<void> {
    const location = this.location;
    const endpoint = this.connection.endpoint;
    if (location === undefined || endpoint === undefined) return;
    this.location = undefined;
    const response = await endpoint.request(this.connection.serverPeer, {
      method: 'DELETE',
      pathSegments: location,
      timeoutMs,
    });
    this.counters.deregistrations++;
    if (response.code === '2.02' || response.code === '4.04') this.events.emit('deregistered');
  }

  /** Disable (/1/x/4): De-register, and register again after `seconds`. */
  async disable(seconds: number): Promise<void> {
    if (this.lifecycle.state !== 'registered') return;
    this.timers.clearAll(['simulate']);
    this.notifier.clear('disabled');
    this.lifecycle.state = 'disabled';
    try {
      await this.sendDeregister(this.options.registrationTimeoutMs);
    } catch {
      // gone anyway
    }
    if (this.lifecycle.state !== 'disabled') return;
    this.timers.set('disable', seconds * 1000, () => {
      if (this.lifecycle.state !== 'disabled') return;
      this.lifecycle.state = 'registering';
      this.attempts = 0;
      this.register();
    });
  }

  private currentLifetime(): number {
    const value = Number(this.objects.get(`/1/${this.connection.serverInstanceId}/1`));
    return Number.isInteger(value) && value > 0 ? value : this.options.lifetime;
  }

  private currentBinding(): string {
    const value = this.objects.get(`/1/${this.connection.serverInstanceId}/7`);
    return typeof value === 'string' && value !== '' ? value : this.options.binding;
  }

  private registrationPayload(): string {
    return registrationLinks(this.objects.values(), {
      lwm2mVersion: this.options.lwm2mVersion,
      rootPath: normaliseRoot(this.options.rootPath),
      contentFormats: this.formats.announced,
    });
  }

  /** Objects or instances came or went: announced with the next Update (at once when registered). */
  markObjectsChanged(): void {
    this.objectsChanged = true;
    if (this.lifecycle.state === 'registered') this.deferUpdate();
  }

  /** Queue mode: reachable now and for queueAwakeMs after the last exchange, then asleep. */
  awake(): void {
    const transport = this.connection.transport;
    if (!this.options.queueMode || transport === undefined) return;
    const state = this.lifecycle.state;
    if (!transport.receiving && (state === 'registered' || state === 'registering')) {
      transport.receiving = true;
      this.events.emit('wake');
    }
    this.timers.set('sleep', this.options.queueAwakeMs, () => {
      const asleep = this.connection.transport;
      if (asleep === undefined || this.lifecycle.state !== 'registered') return;
      asleep.receiving = false;
      this.events.emit('sleep');
    });
  }

  /** Simulated reboot (Device /3/0/4 does this): silent, observations gone, registers again. */
  reboot(whileDown?: () => 'stay-down' | void): void {
    const state = this.lifecycle.state;
    if (state === 'stopped' || state === 'offline' || state === 'bootstrapping') return;
    this.timers.clearAll(['simulate']);
    this.notifier.clear('device rebooted');
    this.lifecycle.state = 'rebooting';
    this.location = undefined;
    if (this.connection.transport !== undefined) this.connection.transport.receiving = false;
    this.events.emit('reboot');
    this.timers.set('reboot', this.options.rebootDelayMs, () => {
      if (this.lifecycle.state !== 'rebooting') return;
      let outcome: 'stay-down' | void = undefined;
      try {
        outcome = whileDown?.();
      } catch (err) {
        emitError(this.events, err as Error);
      }
      if (outcome === 'stay-down') {
        this.lifecycle.state = 'offline';
        if (this.connection.transport !== undefined) this.connection.transport.sending = false;
        return;
      }
      if (this.connection.transport !== undefined) this.connection.transport.receiving = true;
      this.lifecycle.state = 'registering';
      this.attempts = 0;
      this.register();
    });
  }
}
