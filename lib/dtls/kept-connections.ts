/**
 * Established connections handed over between transports (close with keepSessions): ending every
 * association as a transport closes, saving the established ones when asked; and which saved ones the
 * next transport may adopt (fresh, for its port, with a suite still enabled, well-formed, clashing
 * with no association there).
 */

import { normaliseAddress, peerKey } from '../transport/peer';
import type { Peer } from '../transport/types';
import { connectionKeys, keyBlockLength } from './cipher';
import type { AdoptedConnection } from './connection';
import { CONNECTION_ID_LENGTH, type PeerTable } from './peer-table';
import { MAX_SEQUENCE } from './record';
import type { StoredDtlsConnection } from './session-data';
import { WRITE_SEQUENCE_GAP } from './session-store';
import type { CipherSuite } from './suites';

/**
 * Ends every association as the transport closes: handshakes fail; established sessions are closed
 * with close_notify, or, given the local port to save them for, snapshotted and handed over quietly
 * (those that cannot be snapshotted are closed). Returns the snapshots.
 */
export function closeAll(peers: PeerTable, savePort: number | undefined): StoredDtlsConnection[] {
  const kept: StoredDtlsConnection[] = [];
  for (const connection of peers.all()) {
    if (connection.state !== 'established') {
      connection.fail(undefined, 'transport closed');
      continue;
    }
    const snapshot = savePort !== undefined ? connection.snapshot(savePort) : undefined;
    if (snapshot === undefined) {
      connection.close('transport closed', true);
      continue;
    }
    kept.push(snapshot);
    connection.abandon();
    peers.endSession(connection);
  }
  return kept;
}

/** Where the adopting transport stands. */
export interface AdoptionContext {
  localPort: number;
  now: number;
  sessionIdleTimeoutMs: number;
  /** Enabled suites. */
  suites: readonly CipherSuite[];
  /** Whether a current association has this Connection ID of ours. */
  hasId(id: Buffer): boolean;
  /** Whether a current association has this address, or no more sessions fit. */
  addressTakenOrFull(key: string): boolean;
}

/** A saved connection as one to adopt (its peer, saved state and keys), or undefined when it must not be. */
export function adoptable(
  stored: StoredDtlsConnection,
  context: AdoptionContext,
): (AdoptedConnection & { peer: Peer }) | undefined {
  if (stored === null || typeof stored !== 'object' || stored.version !== 1) return undefined;
  if (stored.localPort !== context.localPort || stored.readEpoch !== 1 || stored.writeEpoch !== 1) return undefined;
  if (!(stored.lastActivity + context.sessionIdleTimeoutMs > context.now)) return undefined;
  const suite = context.suites.find((candidate) => candidate.id === stored.suiteId);
  if (suite === undefined || !Buffer.isBuffer(stored.keyBlock)) return undefined;
  if (stored.keyBlock.length !== keyBlockLength(suite.cipher)) return undefined;
  if (!Number.isSafeInteger(stored.nextWriteSequence) || stored.nextWriteSequence < 0) return undefined;
  if (stored.nextWriteSequence + WRITE_SEQUENCE_GAP > MAX_SEQUENCE) return undefined;
  const { identity, credential } = stored;
  if (typeof identity?.identity !== 'string' || credential?.kind !== identity.mode) return undefined;
  if ((suite.keyExchange === 'psk') !== (identity.mode === 'psk')) return undefined;
  const cids = stored.connectionIds;
  if (cids !== undefined) {
    if (!Buffer.isBuffer(cids.own) || !Buffer.isBuffer(cids.peer) || cids.own.length !== CONNECTION_ID_LENGTH) {
      return undefined;
    }
    if (context.hasId(cids.own)) return undefined;
  }
  const address = normaliseAddress(stored.address);
  const peer: Peer = { address, port: stored.port, key: peerKey(address, stored.port) };
  if (context.addressTakenOrFull(peer.key)) return undefined;
  return { peer, stored, keys: connectionKeys(suite.cipher, stored.keyBlock) };
}
