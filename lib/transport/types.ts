/**
 * The seam between the CoAP message layer and the wire: plain UDP today, DTLS later.
 * A transport delivers whole datagrams with the peer they came from, and sends to a peer.
 */

export interface PeerAddress {
  /** IPv4 dotted quad or IPv6 text; dual-stack `::ffff:1.2.3.4` is normalised to `1.2.3.4`. */
  address: string;
  port: number;
  /**
   * Reached over DTLS (coaps). A secure peer has a key of its own (`coaps://…`), so a plain datagram that
   * spoofs a DTLS device's address and port can never match one of its exchanges or observations.
   */
  secure?: boolean;
}

/** The security context a datagram arrived in (set by a DTLS transport; absent on plain UDP). */
export interface SecurityIdentity {
  mode: 'psk' | 'rpk' | 'x509';
  /** PSK identity, certificate CN, or RPK key fingerprint. */
  identity: string;
}

export interface Peer extends PeerAddress {
  /** `address:port` (IPv6 as `[addr]:port`): the one key that identifies a peer everywhere. */
  key: string;
  security?: SecurityIdentity;
}

export interface DatagramTransport {
  /** Binds; resolves with the bound address once listening. */
  start(): Promise<PeerAddress>;
  send(data: Buffer, peer: PeerAddress): void;
  /** One listener; the CoAP endpoint installs it. */
  onDatagram(listener: (data: Buffer, peer: Peer) => void): void;
  /** Resolves once the socket is closed and the port free. */
  close(): Promise<void>;
  localAddress(): PeerAddress | undefined;
}
