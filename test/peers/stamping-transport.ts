import { EventEmitter } from 'node:events';
import type { SessionTransport } from '../../lib/transport/dual';
import type { Peer, PeerAddress, SecurityIdentity } from '../../lib/transport/types';
import { UdpTransport } from '../../lib/transport/udp';

/**
 * What the DTLS transport promises the server (a session per peer, each datagram stamped with the
 * handshake's identity), over plain UDP: the registration rules are tested here apart from the
 * DTLS code, which has its own tests with real DTLS peers.
 */
export class StampingTransport extends EventEmitter implements SessionTransport {
  /** Source port -> the identity its "handshake" established; a port absent here has no session. */
  readonly sessions = new Map<number, SecurityIdentity>();
  private readonly udp: UdpTransport;

  /** `port`: where to listen (0: any free port; a redeploy test binds the previous one again). */
  constructor(port = 0) {
    super();
    this.udp = new UdpTransport({ address: '127.0.0.1', port });
  }

  /** A NAT rebinding with Connection ID: the session of `fromPort` now talks from `toPort`. */
  move(fromPort: number, toPort: number): void {
    const security = this.sessions.get(fromPort);
    if (!security) throw new Error(`no session on port ${fromPort}`);
    this.sessions.delete(fromPort);
    this.sessions.set(toPort, security);
    const previous = { address: '127.0.0.1', port: fromPort, key: `127.0.0.1:${fromPort}`, security };
    this.emit('peerMoved', previous, { address: '127.0.0.1', port: toPort, key: `127.0.0.1:${toPort}`, security });
  }

  start(): Promise<PeerAddress> {
    return this.udp.start();
  }
  send(data: Buffer, peer: PeerAddress): void {
    if (this.sessions.has(peer.port)) this.udp.send(data, peer);
  }
  onDatagram(listener: (data: Buffer, peer: Peer) => void): void {
    this.udp.onDatagram((data, peer) => {
      const security = this.sessions.get(peer.port);
      if (security) listener(data, { ...peer, security });
    });
  }
  hasSession(peer: PeerAddress): boolean {
    return this.sessions.has(peer.port);
  }
  sessionSecurity(peer: PeerAddress): SecurityIdentity | undefined {
    return this.sessions.get(peer.port);
  }
  close(): Promise<void> {
    return this.udp.close();
  }
  localAddress(): PeerAddress | undefined {
    return this.udp.localAddress();
  }
}
