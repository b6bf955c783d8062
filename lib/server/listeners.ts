/**
 * Opening a server's listeners (the LwM2M server's and the bootstrap server's): plain UDP, DTLS with device
 * credentials looked up in the security store, or both under one transport.
 */
import { DtlsTransport } from '../dtls';
import type { DtlsServerOptions } from '../dtls';
import type { DropReport } from '../dtls/drops';
import { MemorySecurityStore } from './memory-security-store';
import { DualTransport } from '../transport/dual';
import type { SessionTransport } from '../transport/dual';
import type { DatagramTransport, PeerAddress } from '../transport/types';
import { UdpTransport } from '../transport/udp';
import type { SecurityStore } from './security';

/** The DTLS listener's settings, without the device credential lookups (those come from the security store). */
export type SecureListenerSettings = Omit<DtlsServerOptions, 'pskKey' | 'clientRawPublicKey' | 'onError'>;

export interface ListenerOptions {
  address: string;
  port: number;
  /** The plain CoAP listener; false: DTLS only. */
  plain: boolean;
  dtls?: SecureListenerSettings;
  defaultSecurePort: number;
  /** Transports to use instead of sockets (tests). */
  transport?: DatagramTransport;
  secureTransport?: SessionTransport;
  securityStore: SecurityStore;
  recvBufferSize?: number;
}

/** What the listeners report to the server that opened them. */
export interface ListenerHooks {
  error(err: Error): void;
  handshakeFailed(peer: PeerAddress, reason: string): void;
  /** DTLS records dropped (throttled: first of a reason, then once a minute per reason). */
  recordsDropped?(drop: DropReport): void;
}

/**
 * The listeners of a server (the LwM2M server and the bootstrap server alike): plain UDP, DTLS with device
 * credentials from the security store, or both under one CoAP endpoint (`dual` is set when DTLS is in).
 */
export function openListeners(
  options: ListenerOptions,
  hooks: ListenerHooks,
): { transport: DatagramTransport; dual?: DualTransport } {
  const plain = !options.plain
    ? undefined
    : (options.transport ??
      new UdpTransport({ address: options.address, port: options.port, recvBufferSize: options.recvBufferSize }));
  const secure = options.secureTransport ?? (options.dtls ? dtlsListener(options, options.dtls, hooks) : undefined);
  if (!secure && plain) return { transport: plain };
  const dual = new DualTransport(plain, secure);
  return { transport: dual, dual };
}

function dtlsListener(options: ListenerOptions, settings: SecureListenerSettings, hooks: ListenerHooks): DtlsTransport {
  const store = options.securityStore;
  const memory = store instanceof MemorySecurityStore ? store : undefined;
  const transport = new DtlsTransport({
    address: options.address,
    // Cellular devices share carrier-NAT addresses by the thousand: after a network outage they all
    // handshake at once. A cookie exchange comes first, so each of these costs a peer that can receive; a
    // full address evicts its oldest half-open handshake, so a flood from it cannot lock its honest devices out.
    maxHandshakesPerAddress: 500,
    ...settings,
    port: settings.port ?? options.defaultSecurePort,
    // The memory store answers synchronously: no promise per handshake on the common path.
    pskKey: memory
      ? (identity) => memory.pskKeySync(identity)
      : (identity) => store.getByPskIdentity(identity).then((info) => info?.key),
    clientRawPublicKey: (spki) => store.getByPublicKey(spki).then((info) => info?.endpoint),
    onError: hooks.error,
  });
  transport.on('handshakeFailed', hooks.handshakeFailed);
  const recordsDropped = hooks.recordsDropped;
  if (recordsDropped) transport.on('recordsDropped', recordsDropped);
  return transport;
}
