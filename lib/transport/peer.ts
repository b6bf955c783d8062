/** Peer addresses: normalising IPv4-mapped addresses and the string keys peers are stored by. */

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

/**
 * The same text as one flat string. Text built by concatenation (`a + b`, template literals, crypto's
 * randomUUID) is a tree of rope nodes, 32 bytes each, and stays one when kept as a Map key or a field:
 * flatten what is kept for the life of a registration or an observation (about 450 bytes less per UUID).
 */
export function flatString(text: string): string {
  if (text.length < 13) return text; // never a rope
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) > 0xff) return Buffer.from(text, 'utf16le').toString('utf16le');
  }
  return Buffer.from(text, 'latin1').toString('latin1');
}
