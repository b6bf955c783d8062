/**
 * The LwM2M bootstrap server facade: a CoAP endpoint (plain UDP 5685, DTLS 5686) that answers
 * Bootstrap-Request (POST /bs) and Bootstrap-Pack-Request (GET /bspack, LwM2M 1.2), and runs one
 * BootstrapSession per device (see session.ts for the state machine). Configurations come from a
 * BootstrapConfigStore; device bootstrap credentials from a SecurityStore, with the DM server's rules.
 */
import { EventEmitter } from 'node:events';
import { CoapEndpoint } from '../coap/endpoint';
import type {
  CoapEndpointOptions,
  IncomingRequest,
  IncomingResponse,
  OutgoingRequest,
  OutgoingResponse,
} from '../coap/types';
import { CoapRequestError } from '../coap/types';
import { encodeNodes, formatName } from '../content';
import { ContentFormat } from '../content/types';
import { ObjectModel } from '../model/object-model';
import type { LwM2mNode } from '../model/types';
import type { SecureListenerOptions } from '../server/lwm2m-server';
import type { SecurityStore } from '../server/security';
import { openListeners } from '../server/listeners';
import type { DropReport } from '../dtls/drops';
import { SecurityCheckError, authorizeRegister } from '../server/security';
import { MemorySecurityStore } from '../server/memory-security-store';
import { DualTransport } from '../transport/dual';
import type { SessionTransport } from '../transport/dual';
import type { DatagramTransport, Peer, PeerAddress, SecurityIdentity } from '../transport/types';
import type { BootstrapConfig, BootstrapConfigStore } from './config';
import { MemoryBootstrapConfigStore } from './config';
import { buildPlan } from './plan';
import type { BootstrapStep, BootstrapSummary } from './session';
import { BootstrapSession, BootstrapStepError } from './session';

export interface BootstrapServerOptions {
  /** Bind address ('::' by default). */
  address: string;
  /** Plain CoAP port, 5685 by default; 0 picks a free one (tests). */
  port: number;
  /** The plain listener; false: devices over DTLS only. */
  plain: boolean;
  /** The DTLS listener (5686 by default); absent = none. Device credentials come from `securityStore`. */
  dtls?: SecureListenerOptions;
  /** Transports to use instead of sockets (tests). */
  transport?: DatagramTransport;
  secureTransport?: SessionTransport;
  /** Devices' bootstrap credentials: a device with an entry must come over DTLS with that identity. */
  securityStore: SecurityStore;
  configStore: BootstrapConfigStore;
  model: ObjectModel;
  coap: Partial<CoapEndpointOptions>;
  /** Sessions at once (over all devices); more Bootstrap-Requests get 5.03. */
  maxSessions: number;
  /** A whole session's time limit (ms). */
  sessionTimeoutMs: number;
  /** Hard limit per request to the device (ms); the CoAP timing's own when absent. */
  requestTimeoutMs?: number;
}

export const DEFAULT_BOOTSTRAP_PORT = 5685;
export const DEFAULT_BOOTSTRAP_SECURE_PORT = 5686;

export const DEFAULT_BOOTSTRAP_OPTIONS: Omit<BootstrapServerOptions, 'securityStore' | 'configStore' | 'model'> = {
  address: '::',
  port: DEFAULT_BOOTSTRAP_PORT,
  plain: true,
  coap: {},
  maxSessions: 1000,
  sessionTimeoutMs: 300_000,
};

/** The device as a flow sees it. */
export interface BootstrapPeer {
  address: string;
  port: number;
  secure: boolean;
  security?: SecurityIdentity;
}

export interface BootstrapStartedEvent {
  endpoint: string;
  peer: BootstrapPeer;
  /** 'bs': Bootstrap-Request and the write sequence; 'pack': one Bootstrap-Pack (1.2). */
  method: 'bs' | 'pack';
  /** The content format the device prefers (pct), when it said. */
  preferredContentFormat?: number;
}

export interface BootstrapFinishedEvent {
  endpoint: string;
  peer: BootstrapPeer;
  method: 'bs' | 'pack';
  summary: BootstrapSummary;
  durationMs: number;
}

export interface BootstrapFailedEvent {
  endpoint: string;
  peer: BootstrapPeer;
  method: 'bs' | 'pack';
  /** Where it went wrong: 'request' (refused at POST /bs or GET /bspack), or a session step. */
  step: BootstrapStep;
  reason: string;
  /** The path of the failing request. */
  path?: string;
  /** The device's CoAP code; 'timeout', 'reset', 'aborted'; or the code we answered a refused request with. */
  code?: string;
  /** The device's diagnostic payload (e.g. with a 4.06 to Bootstrap-Finish). */
  diagnostic?: string;
  /** The device asked for bootstrap again mid-session: a new session replaced this one. */
  restarted?: boolean;
  durationMs: number;
}

export interface BootstrapServerEvents {
  bootstrapStarted: [event: BootstrapStartedEvent];
  bootstrapFinished: [event: BootstrapFinishedEvent];
  bootstrapFailed: [event: BootstrapFailedEvent];
  started: [address: PeerAddress];
  stopped: [];
  /** A DTLS handshake failed: who and why. */
  handshakeFailed: [peer: PeerAddress, reason: string];
  /** DTLS records were dropped: the first of a reason, then at most once a minute per reason, with counts. */
  dtlsRecordsDropped: [drop: DropReport];
  error: [error: Error];
}

interface Running {
  session: BootstrapSession;
  peer: Peer;
  timer: NodeJS.Timeout;
}

const PACK_FORMATS = new Set<number>([ContentFormat.SENML_CBOR, ContentFormat.SENML_JSON]);

export class BootstrapServer extends EventEmitter<BootstrapServerEvents> {
  readonly options: BootstrapServerOptions;
  readonly model: ObjectModel;
  private endpoint?: CoapEndpoint;
  private dual?: DualTransport;
  private boundAddress?: PeerAddress;
  private starting?: Promise<PeerAddress>;
  private readonly sessions = new Map<string, Running>();

  constructor(options: Partial<BootstrapServerOptions> = {}) {
    super();
    const model = options.model ?? ObjectModel.withBuiltins();
    this.options = {
      ...DEFAULT_BOOTSTRAP_OPTIONS,
      ...options,
      model,
      securityStore: options.securityStore ?? new MemorySecurityStore(),
      configStore: options.configStore ?? new MemoryBootstrapConfigStore(model),
    };
    this.model = model;
  }

  get running(): boolean {
    return this.endpoint !== undefined;
  }

  /** The plain listener's address (the DTLS one's when plain is off). */
  get address(): PeerAddress | undefined {
    return this.boundAddress;
  }

  get secureAddress(): PeerAddress | undefined {
    return this.dual?.secureAddress();
  }

  get securityStore(): SecurityStore {
    return this.options.securityStore;
  }

  get configStore(): BootstrapConfigStore {
    return this.options.configStore;
  }

  /** Endpoints with a session running. */
  activeSessions(): string[] {
    return [...this.sessions.keys()];
  }

  start(): Promise<PeerAddress> {
    if (this.boundAddress && this.endpoint) return Promise.resolve(this.boundAddress);
    this.starting ??= this.doStart().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async doStart(): Promise<PeerAddress> {
    const { transport, dual } = openListeners(
      { ...this.options, defaultSecurePort: DEFAULT_BOOTSTRAP_SECURE_PORT },
      {
        error: (err) => this.emitError(err),
        handshakeFailed: (peer, reason) => this.emit('handshakeFailed', peer, reason),
        recordsDropped: (drop) => this.emit('dtlsRecordsDropped', drop),
      },
    );
    const endpoint = new CoapEndpoint(transport, this.options.coap);
    endpoint.setRequestHandler((request) => this.handleRequest(request));
    endpoint.onError = (err) => this.emitError(err as Error);
    const address = await endpoint.start();
    this.endpoint = endpoint;
    this.dual = dual;
    this.boundAddress = address;
    this.emit('started', address);
    return address;
  }

  /** Ends every session (reported as failed) and closes the listeners. */
  async stop(): Promise<void> {
    if (this.starting) await this.starting.catch(() => undefined);
    for (const running of this.sessions.values()) running.session.abort('the bootstrap server stopped');
    const endpoint = this.endpoint;
    this.endpoint = undefined;
    this.dual = undefined;
    this.boundAddress = undefined;
    if (endpoint) {
      await endpoint.close();
      // Sessions waiting for an answer fail as the endpoint closes; let them report before 'stopped'.
      await new Promise((resolve) => setImmediate(resolve));
      this.emit('stopped');
    }
  }

  // ---- requests from devices -------------------------------------------------------------------

  private async handleRequest(request: IncomingRequest): Promise<OutgoingResponse> {
    const first = request.pathSegments[0];
    if (request.pathSegments.length === 1 && first === 'bs') {
      if (request.method !== 'POST') return { code: '4.05' };
      return this.bootstrapRequest(request);
    }
    if (request.pathSegments.length === 1 && first === 'bspack') {
      if (request.method !== 'GET') return { code: '4.05' };
      return this.bootstrapPack(request);
    }
    if (first === 'rd') return { code: '4.04', payload: Buffer.from('this is a bootstrap server: register elsewhere') };
    return { code: '4.04' };
  }

  /** Who asks (checked against its credentials) and its configuration; or the answer refusing it. */
  private async admit(
    request: IncomingRequest,
    method: 'bs' | 'pack',
  ): Promise<{ endpoint: string; config: BootstrapConfig } | OutgoingResponse> {
    const query = parseQuery(request.query);
    const requested = query.ep;
    if (requested === '') return this.refuse(request, '', method, '4.00', 'the "ep" parameter is empty');
    let endpoint: string | undefined;
    try {
      endpoint = await authorizeRegister(this.options.securityStore, requested, request.peer);
    } catch (err) {
      if (err instanceof SecurityCheckError) return this.refuse(request, requested ?? '', method, '4.03', err.message);
      throw err;
    }
    if (endpoint === undefined) return this.refuse(request, '', method, '4.00', 'no endpoint name ("ep") given');
    const config = await this.options.configStore.get(endpoint);
    // LwM2M Core: an unknown endpoint gets 4.00 to a Bootstrap-Request; a Bootstrap-Pack-Request 4.04, after which
    // a 1.2 device falls back to POST /bs.
    if (!config)
      return this.refuse(
        request,
        endpoint,
        method,
        method === 'bs' ? '4.00' : '4.04',
        `no bootstrap configuration for endpoint "${endpoint}"`,
      );
    return { endpoint, config };
  }

  private async bootstrapRequest(request: IncomingRequest): Promise<OutgoingResponse> {
    const admitted = await this.admit(request, 'bs');
    if ('code' in admitted) return admitted;
    const { endpoint, config } = admitted;
    const pct = parseQuery(request.query).pct;
    let preferredFormat: number | undefined;
    if (pct !== undefined) {
      preferredFormat = /^\d{1,5}$/.test(pct) ? Number(pct) : NaN;
      if (!Number.isInteger(preferredFormat) || preferredFormat > 65535)
        return this.refuse(request, endpoint, 'bs', '4.00', `pct=${pct} is not a content format number`);
    }
    const previous = this.sessions.get(endpoint);
    if (previous) {
      // The device asked again (it rebooted, or gave up on us): this session ends, a new one starts.
      previous.session.abort('the device requested bootstrap again: a new session replaces this one');
      this.end(endpoint, previous);
    } else if (this.sessions.size >= this.options.maxSessions) {
      return this.refuse(request, endpoint, 'bs', '5.03', 'too many bootstrap sessions at once');
    }
    const peer = request.peer;
    const send = (outgoing: OutgoingRequest): Promise<IncomingResponse> => {
      const coap = this.endpoint;
      if (!coap) return Promise.reject(new CoapRequestError('the bootstrap server stopped', 'closed'));
      return coap.request(peer, outgoing);
    };
    const session = new BootstrapSession({
      endpoint,
      config,
      model: this.model,
      preferredFormat,
      requestTimeoutMs: this.options.requestTimeoutMs,
      send,
    });
    const timer = setTimeout(() => {
      session.abort(`the session took longer than ${this.options.sessionTimeoutMs} ms`);
    }, this.options.sessionTimeoutMs);
    timer.unref?.();
    const running: Running = { session, peer, timer };
    this.sessions.set(endpoint, running);
    this.emit('bootstrapStarted', {
      endpoint,
      peer: peerOf(peer),
      method: 'bs',
      ...(preferredFormat !== undefined ? { preferredContentFormat: preferredFormat } : {}),
    });
    // The 2.04 goes out first; the session's first request right after it.
    setImmediate(() => void this.runSession(endpoint, running));
    return { code: '2.04' };
  }

  private async runSession(endpoint: string, running: Running): Promise<void> {
    const { session, peer } = running;
    try {
      const summary = await session.run();
      this.emit('bootstrapFinished', {
        endpoint,
        peer: peerOf(peer),
        method: 'bs',
        summary,
        durationMs: Date.now() - session.startedAt,
      });
    } catch (err) {
      const failure = err instanceof BootstrapStepError ? err : new BootstrapStepError(String(err), session.step);
      const restarted = this.sessions.get(endpoint) !== running;
      this.emit('bootstrapFailed', {
        endpoint,
        peer: peerOf(peer),
        method: 'bs',
        step: failure.step,
        reason: failure.message,
        ...(failure.path !== undefined ? { path: failure.path } : {}),
        ...(failure.code !== undefined ? { code: failure.code } : {}),
        ...(failure.diagnostic ? { diagnostic: failure.diagnostic } : {}),
        ...(restarted ? { restarted: true } : {}),
        durationMs: Date.now() - session.startedAt,
      });
    } finally {
      this.end(endpoint, running);
    }
  }

  private end(endpoint: string, running: Running): void {
    clearTimeout(running.timer);
    if (this.sessions.get(endpoint) === running) this.sessions.delete(endpoint);
  }

  /** Bootstrap-Pack-Request (1.2): the whole configuration as one SenML pack. */
  private async bootstrapPack(request: IncomingRequest): Promise<OutgoingResponse> {
    const accept = request.accept ?? ContentFormat.SENML_CBOR;
    if (!PACK_FORMATS.has(accept)) {
      return this.refuse(
        request,
        parseQuery(request.query).ep ?? '',
        'pack',
        '4.06',
        `a Bootstrap-Pack is SenML CBOR (112) or SenML JSON (110), not ${formatName(accept)}`,
      );
    }
    const admitted = await this.admit(request, 'pack');
    if ('code' in admitted) return admitted;
    const { endpoint, config } = admitted;
    const started = Date.now();
    const peer = peerOf(request.peer);
    this.emit('bootstrapStarted', { endpoint, peer, method: 'pack' });
    let payload: Buffer;
    try {
      const plan = buildPlan(config, this.model);
      const nodes = new Map<string, LwM2mNode>();
      for (const write of plan.writes) nodes.set(write.path.toString(), write.node);
      payload = encodeNodes(nodes, accept, this.model);
      this.emit('bootstrapFinished', {
        endpoint,
        peer,
        method: 'pack',
        summary: {
          servers: plan.servers,
          bootstrapAccountWritten: plan.writes.some((write) => write.kind === 'bootstrapAccount'),
          deleted: [],
          written: [...nodes.keys()],
          contentFormat: accept,
          lwm2mVersion: '1.2',
          warnings: [],
        },
        durationMs: Date.now() - started,
      });
    } catch (err) {
      const reason = `the configuration cannot be sent as a Bootstrap-Pack: ${(err as Error).message}`;
      this.emit('bootstrapFailed', {
        endpoint,
        peer,
        method: 'pack',
        step: 'request',
        reason,
        code: '5.00',
        durationMs: Date.now() - started,
      });
      return { code: '5.00', payload: Buffer.from(reason) };
    }
    return { code: '2.05', contentFormat: accept, payload };
  }

  private refuse(
    request: IncomingRequest,
    endpoint: string,
    method: 'bs' | 'pack',
    code: string,
    reason: string,
  ): OutgoingResponse {
    this.emit('bootstrapFailed', {
      endpoint,
      peer: peerOf(request.peer),
      method,
      step: 'request',
      reason,
      code,
      durationMs: 0,
    });
    return { code, payload: Buffer.from(reason) };
  }

  private emitError(error: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', error);
  }
}

function parseQuery(query: string[]): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const item of query) {
    const eq = item.indexOf('=');
    if (eq < 0) out[item] = '';
    else out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

function peerOf(peer: Peer): BootstrapPeer {
  return {
    address: peer.address,
    port: peer.port,
    secure: peer.secure === true,
    ...(peer.security ? { security: { mode: peer.security.mode, identity: peer.security.identity } } : {}),
  };
}
