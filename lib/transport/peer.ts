import { isIPv4 } from 'node:net';
import type { Peer, PeerAddress } from './types';

/** `::ffff:1.2.3.4` (an IPv4 peer seen through a dual-stack socket) -> `1.2.3.4`; anything else unchanged. */
export function normaliseAddress(address: string): string {
  if (address.length > 13 && address.charCodeAt(0) === 58 /* : */ && address.indexOf('.', 7) > 0) {
    const prefix = address.slice(0, 7);
    if (prefix === '::ffff:' || prefix.toLowerCase() === '::ffff:') {
      const v4 = address.slice(7);
      if (isIPv4(v4)) return v4;
    }
  }
  return address;
}

/** `1.2.3.4:5683`, `[::1]:5683`; `coaps://1.2.3.4:5684` for a DTLS peer. The address must already be normalised. */
export function peerKey(address: string, port: number, secure = false): string {
  const hostPort = address.indexOf(':') >= 0 ? '[' + address + ']:' + port : address + ':' + port;
  return secure ? SECURE_KEY_PREFIX + hostPort : hostPort;
}

export const SECURE_KEY_PREFIX = 'coaps://';

/** A Peer (with `key`) for any PeerAddress; a Peer that already carries a key is returned as is. */
export function toPeer(peer: PeerAddress | Peer): Peer {
  const p = peer as Peer;
  if (typeof p.key === 'string' && p.key.length > 0) return p;
  const address = normaliseAddress(peer.address);
  if (peer.secure === true) return { address, port: peer.port, key: peerKey(address, peer.port, true), secure: true };
  return { address, port: peer.port, key: peerKey(address, peer.port) };
}
