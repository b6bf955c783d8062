/**
 * Client-initiated bootstrap (LwM2M Core §6.1): the attempts and their retries against the
 * Bootstrap-Server (Bootstrap-Pack in 1.2, else Bootstrap-Request), and the answers to its requests on
 * the bootstrap interface (Discover, Read, Write, Delete, Finish) until the configuration is complete.
 */
import type { CoapEndpoint } from '../coap/endpoint';
import type { IncomingRequest, OutgoingResponse } from '../coap/types';
import { ContentFormat } from '../content/types';
import { decodeNodes, formatName } from '../content';
import type { ObjectModel } from '../model/object-model';
import { LwM2mPath } from '../model/path';
import { BootstrapInterface, findServerAccount, type ServerAccount } from './bootstrap';
import type { ServerConnection } from './connection';
import type { DeviceObjects } from './device-objects';
import { ClientError } from './errors';
import type { ClientFormats } from './formats';
import type { ClientLifecycle } from './lifecycle';
import type { Notifier } from './notifier';
import { EMPTY_BUFFER } from './object-tree';
import type { ClientCounters, ClientEvents, Lwm2mClientOptions, RetryPolicy } from './options';
import type { RegistrationEngine } from './registration-engine';
import type { ClientTimers } from './timers';

/** The parts of the client the bootstrap handler works with. */
export interface BootstrapParts {
  lifecycle: ClientLifecycle;
  timers: ClientTimers;
  connection: ServerConnection;
  objects: DeviceObjects;
  formats: ClientFormats;
  notifier: Notifier;
  registration: RegistrationEngine;
  counters: ClientCounters;
  events: ClientEvents;
}

export class BootstrapHandler {
  private readonly lifecycle: ClientLifecycle;
  private readonly timers: ClientTimers;
  private readonly connection: ServerConnection;
  private readonly objects: DeviceObjects;
  private readonly formats: ClientFormats;
  private readonly notifier: Notifier;
  private readonly registration: RegistrationEngine;
  private readonly counters: ClientCounters;
  private readonly events: ClientEvents;
  private readonly retry: RetryPolicy;
  private readonly bootstrapInterface: BootstrapInterface;
  /** Numbers the attempts: a timer or an answer of an older attempt finds it changed and does nothing. */
  private session = 0;
  private attempts = 0;

  constructor(
    private readonly options: Lwm2mClientOptions,
    private readonly model: ObjectModel,
    parts: BootstrapParts,
  ) {
    this.lifecycle = parts.lifecycle;
    this.timers = parts.timers;
    this.connection = parts.connection;
    this.objects = parts.objects;
    this.formats = parts.formats;
    this.notifier = parts.notifier;
    this.registration = parts.registration;
    this.counters = parts.counters;
    this.events = parts.events;
    this.bootstrapInterface = new BootstrapInterface(options.lwm2mVersion, model, this.objects, this.formats, {
      objectsChanged: () => this.registration.markObjectsChanged(),
      finished: (account) => this.finishBootstrap(account),
    });
    this.retry = { initialDelayMs: 1000, maxDelayMs: 60_000, maxAttempts: Infinity, ...options.bootstrapRetry };
  }

  /** Ends the attempt under way (the client stops). */
  cancel(): void {
    this.session++;
  }

  /** Security / Server instances at construction: the Bootstrap-Server account, and the server account if given. */
  initialAccounts(explicitServer: boolean): void {
    const o = this.options;
    const security = this.objects.object(0)!;
    const server = this.objects.object(1)!;
    security.instances.clear();
    const bs = o.bootstrapPsk;
    // the Bootstrap-Server account: Bootstrap-Server true, no Short Server ID
    this.objects.addInstance(0, 0, {
      0: o.bootstrapUri,
      1: true,
      2: bs ? 0 : 3,
      3: bs ? Buffer.from(bs.identity, 'utf8') : EMPTY_BUFFER,
      5: bs ? bs.key : EMPTY_BUFFER,
      10: undefined,
    });
    if (explicitServer) {
      const psk = o.psk;
      this.objects.addInstance(0, 1, {
        0: o.serverUri,
        1: false,
        2: psk ? 0 : 3,
        3: psk ? Buffer.from(psk.identity, 'utf8') : EMPTY_BUFFER,
        5: psk ? psk.key : EMPTY_BUFFER,
        10: o.shortServerId,
      });
    } else server.instances.clear();
  }

  /** A client-initiated bootstrap from the first attempt (start, bootstrap(), registration failed for good). */
  begin(reason: string): void {
    // A fresh retry sequence (bootstrapRetry), as each caller of the former beginBootstrap() started one.
    this.attempts = 0;
    this.registration.resetAttempts();
    this.timers.clearAll(['simulate']);
    this.notifier.clear('bootstrapping');
    this.registration.forgetLocation();
    this.lifecycle.state = 'bootstrapping';
    void this.runBootstrap(++this.session, reason);
  }

  /** One bootstrap attempt: socket to the Bootstrap-Server, Bootstrap-Pack (1.2) or Bootstrap-Request. */
  private async runBootstrap(session: number, reason: string): Promise<void> {
    const o = this.options;
    const uri = o.bootstrapUri!;
    const stale = (): boolean => this.session !== session || this.lifecycle.state !== 'bootstrapping';
    this.attempts++;
    this.events.emit('bootstrapping', { uri, reason, attempt: this.attempts });
    try {
      await this.connection.close();
      if (stale()) return;
      await this.connection.open({ uri, psk: o.bootstrapPsk });
      if (stale()) {
        if (this.lifecycle.state === 'stopped' || this.lifecycle.state === 'failed') await this.connection.close();
        return;
      }
      const endpoint = this.connection.requireEndpoint();
      this.armBootstrapTimer(session);
      if (o.lwm2mVersion === '1.2' && (await this.bootstrapPack(endpoint, stale))) return;
      if (stale()) return;
      const query = [`ep=${this.options.endpointName}`];
      // 1.1+: the Preferred Content Format for the Bootstrap-Server's writes (LwM2M 1.1 Transport §6.1)
      if (o.lwm2mVersion !== '1.0') query.push(`pct=${this.formats.multiFormat}`);
      const response = await endpoint.request(this.connection.serverPeer, {
        method: 'POST',
        pathSegments: ['bs'],
        query,
        timeoutMs: o.registrationTimeoutMs,
      });
      if (stale()) return;
      if (response.code !== '2.04') {
        const why = response.payload.length > 0 ? `: ${response.payload.toString('utf8')}` : '';
        throw new ClientError(response.code, `Bootstrap-Request refused with ${response.code}${why}`);
      }
      // from now on the bootstrap server has bootstrapTimeoutMs between its requests, until Bootstrap-Finish
      this.armBootstrapTimer(session);
    } catch (err) {
      if (!stale()) this.bootstrapFailed(err as Error);
    }
  }

  /**
   * LwM2M 1.2 Bootstrap-Pack-Request (GET /bspack?ep=, SenML CBOR): true when the pack was applied and
   * the bootstrap is done; false when the server has none (any answer but 2.05): use /bs instead.
   */
  private async bootstrapPack(endpoint: CoapEndpoint, stale: () => boolean): Promise<boolean> {
    const response = await endpoint.request(this.connection.serverPeer, {
      method: 'GET',
      pathSegments: ['bspack'],
      query: [`ep=${this.options.endpointName}`],
      accept: ContentFormat.SENML_CBOR,
      timeoutMs: this.options.registrationTimeoutMs,
    });
    if (stale() || response.code !== '2.05') return false;
    const format = response.contentFormat ?? ContentFormat.SENML_CBOR;
    if (format !== ContentFormat.SENML_CBOR && format !== ContentFormat.SENML_JSON) {
      throw new Error(`Bootstrap-Pack in ${formatName(format)}, not SenML CBOR`);
    }
    const nodes = decodeNodes(response.payload, format, this.model);
    // the pack is the whole configuration: it replaces the server accounts (the bootstrap account stays)
    this.bootstrapInterface.deleteInstances(0);
    this.bootstrapInterface.deleteInstances(1);
    for (const [text, node] of nodes) this.bootstrapInterface.writeNode(LwM2mPath.parse(text), node);
    const found = findServerAccount(this.objects.object(0), this.objects.object(1));
    if ('error' in found) throw new Error(`Bootstrap-Pack: ${found.error}`);
    this.finishBootstrap(found.account);
    return true;
  }

  private armBootstrapTimer(session: number = this.session): void {
    const ms = this.options.bootstrapTimeoutMs;
    this.timers.set('bootstrap', ms, () => {
      if (this.session !== session || this.lifecycle.state !== 'bootstrapping') return;
      this.bootstrapFailed(new Error(`bootstrap did not finish within ${ms} ms of the last Bootstrap-Server request`));
    });
  }

  private bootstrapFailed(err: Error): void {
    this.timers.clear('bootstrap');
    this.session++;
    this.counters.bootstrapFailures++;
    if (this.events.listenerCount('bootstrapFailed') > 0) this.events.emit('bootstrapFailed', err);
    const retry = this.retry;
    if (this.attempts >= retry.maxAttempts) {
      this.lifecycle.state = 'failed';
      void this.connection.close();
      this.lifecycle.settleWaiters(new Error(`${this.options.endpointName}: bootstrap failed: ${err.message}`));
      return;
    }
    const base = Math.min(retry.maxDelayMs, retry.initialDelayMs * 2 ** (this.attempts - 1));
    const delay = base * (0.5 + this.options.random() * 0.5);
    this.timers.set('bootstrapRetry', delay, () => {
      if (this.lifecycle.state === 'bootstrapping') void this.runBootstrap(++this.session, `retry: ${err.message}`);
    });
  }

  /** Bootstrap done: (after the 2.04 went out) close the bootstrap socket and register with the new server. */
  private finishBootstrap(account: ServerAccount): void {
    this.timers.clear('bootstrap');
    this.timers.clear('bootstrapRetry');
    this.session++;
    this.counters.bootstraps++;
    this.connection.useAccount(account);
    this.lifecycle.state = 'registering';
    this.registration.resetAttempts();
    this.timers.set('bootstrapDone', 0, () => {
      if (this.lifecycle.state !== 'registering') return;
      this.events.emit('bootstrapped', {
        serverUri: account.uri,
        securityMode: account.securityMode,
        shortServerId: account.shortServerId,
      });
      void this.connection.close().then(() => {
        if (this.lifecycle.state === 'registering' && this.connection.endpoint === undefined)
          this.registration.register();
      });
    });
  }

  /** A request of the Bootstrap-Server: each one gives it bootstrapTimeoutMs more to finish. */
  handleRequest(request: IncomingRequest): Promise<OutgoingResponse> {
    this.armBootstrapTimer();
    return this.bootstrapInterface.answer(request);
  }
}
