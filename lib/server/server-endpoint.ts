/**
 * The server's CoAP endpoint over its listeners (plain UDP, DTLS or both): opening it, keeping the DTLS sessions
 * that moved (Connection ID) under the keys they started with, watching its per-address request budget, closing it.
 * While it is open the plain downlink sender holds it.
 */
import { CoapEndpoint } from '../coap/endpoint';
import type { RequestHandler, UnknownNotificationHandler } from '../coap/types';
import type { DropReport } from '../dtls/drops';
import type { DualTransport } from '../transport/dual';
import { peerKey } from '../transport/peer';
import type { PeerAddress } from '../transport/types';
import type { CoapDownlinkSender } from './downlink/sender';
import type { LimitWarnings } from './limit-warnings';
import { watchRequestBudget } from './limit-warnings';
import { openListeners } from './listeners';
import type { Registration } from './registration';
import type { Lwm2mServerOptions } from './server-options';
import { DEFAULT_REQUESTS_PER_SECOND_PER_ADDRESS } from './server-options';
import type { RegistrationStore } from './stores';

/** What the endpoint hands to the server, and reports. */
export interface ServerEndpointHooks {
  handleRequest: RequestHandler;
  /** A notification of no observation this endpoint knows (one stored before a restart, or by another instance). */
  adopt: UnknownNotificationHandler;
  error(err: Error): void;
  handshakeFailed(peer: PeerAddress, reason: string): void;
  recordsDropped(drop: DropReport): void;
  /** A DTLS device's session followed it to a new address: its registration now, and before. */
  moved(registration: Registration, previous: Registration): void;
}

export class ServerEndpoint {
  /** The plain CoAP listener's address (the DTLS one's when plain is off), while open. */
  address?: PeerAddress;
  /** Watches the endpoint's per-address request budget (drops are counted there) to report them. */
  private requestBudgetTimer?: NodeJS.Timeout;

  constructor(
    private readonly options: Lwm2mServerOptions,
    private readonly coap: CoapDownlinkSender,
    private readonly registrations: RegistrationStore,
    private readonly hooks: ServerEndpointHooks,
  ) {}

  /** Binds the listeners and starts the endpoint; from then on the plain downlink sender sends on it. */
  async open(): Promise<PeerAddress> {
    // A fleet re-registering at once (after an outage) arrives in bursts: a 4 MiB receive buffer keeps
    // the kernel from dropping them (its default overflows at ~200 datagrams).
    const hooks = this.hooks;
    const { transport, dual } = openListeners(
      { ...this.options, defaultSecurePort: 5684, recvBufferSize: 4 * 1024 * 1024 },
      { error: hooks.error, handshakeFailed: hooks.handshakeFailed, recordsDropped: hooks.recordsDropped },
    );
    if (dual) dual.onPeerMoved = (key, current) => void this.followMovedPeer(key, current);
    // Many devices can share one address (carrier NAT, a gateway): the per-address budget is generous;
    // per-peer limits still bound what one device can cause.
    const endpoint = new CoapEndpoint(transport, {
      maxRequestsPerSecondPerAddress: DEFAULT_REQUESTS_PER_SECOND_PER_ADDRESS,
      ...this.options.coap,
    });
    endpoint.setRequestHandler(hooks.handleRequest);
    endpoint.setUnknownNotificationHandler(hooks.adopt);
    const address = await endpoint.start();
    // Sessions taken over from the previous listener that had moved (Connection ID) go on under the keys they
    // started with.
    if (dual?.secure) await this.restoreMovedPeers(dual);
    this.coap.attach(endpoint, dual);
    this.address = address;
    return address;
  }

  /** Reports the requests the endpoint's per-address budget drops (through the limit warnings). */
  watchRequestBudget(limitWarnings: LimitWarnings): void {
    const endpoint = this.coap.endpoint;
    if (endpoint === undefined) return;
    this.requestBudgetTimer = watchRequestBudget(
      () => endpoint.stats().rateLimited,
      this.options.coap.maxRequestsPerSecondPerAddress ?? DEFAULT_REQUESTS_PER_SECOND_PER_ADDRESS,
      limitWarnings,
    );
  }

  /** Closes the endpoint (and its sockets). Returns whether one was open. */
  async close(): Promise<boolean> {
    clearInterval(this.requestBudgetTimer);
    this.requestBudgetTimer = undefined;
    const endpoint = this.coap.detach();
    this.address = undefined;
    if (!endpoint) return false;
    await endpoint.close();
    return true;
  }

  /**
   * A registration whose key is not the one of its address belongs to a DTLS session that moved. Its session
   * outlives a redeploy (kept in the host's session store), so the new transport must know the old key.
   */
  private async restoreMovedPeers(dual: DualTransport): Promise<void> {
    for (const registration of await this.registrations.list()) {
      if (registration.security === undefined) continue;
      if (registration.peerKey === peerKey(registration.address, registration.port, true)) continue;
      const at = { address: registration.address, port: registration.port };
      // Only for a session that was taken over, with this identity: anyone else there is another device.
      const session = dual.secure?.sessionSecurity?.(at);
      if (session?.mode !== registration.security.mode || session.identity !== registration.security.identity) continue;
      dual.restoreMovedPeer(registration.peerKey, at, registration.security);
    }
  }

  /**
   * A DTLS session moved (Connection ID after a NAT rebinding): the registration shows the device's new
   * address. Requests need nothing: they go by the session's key, which stays the same.
   */
  private async followMovedPeer(key: string, current: PeerAddress): Promise<void> {
    try {
      const registration = await this.registrations.getByPeer(key);
      if (!registration || (registration.address === current.address && registration.port === current.port)) return;
      await this.registrations.update({ ...registration, address: current.address, port: current.port });
      this.hooks.moved({ ...registration, address: current.address, port: current.port }, registration);
    } catch (err) {
      this.hooks.error(err as Error);
    }
  }
}
