/**
 * Handing an established connection over to the next transport (close with keepSessions): the
 * snapshot the closing one saves, and the record layer the adopting one restores from it.
 */

import type { Peer } from '../transport/types';
import type { ConnectionKeys } from './cipher';
import { RecordLayer } from './record-layer';
import { ReplayWindow } from './replay';
import type { ConnectionIds } from './server-handshake';
import type { SessionCredential, StoredDtlsConnection } from './session-data';
import { WRITE_SEQUENCE_GAP } from './session-store';

/** What a connection was established with: the negotiated suite, the key block and what authenticated the client. */
export interface EstablishedSession {
  suiteId: number;
  keyBlock: Buffer | undefined;
  credential: SessionCredential | undefined;
}

/** What a snapshot is made of: an established connection's state. */
export interface HandoverSource {
  peer: Peer;
  lastActivity: number;
  sessionId: Buffer | undefined;
  connectionIds: ConnectionIds | undefined;
  session: EstablishedSession | undefined;
  records: RecordLayer;
}

/** The connection's state for another transport to adopt (undefined when there is none to hand over). Buffers are copies. */
export function snapshotOf(localPort: number, source: HandoverSource): StoredDtlsConnection | undefined {
  const { session, records, peer } = source;
  const security = peer.security;
  if (session === undefined || security === undefined || records.writeEpoch !== 1) return undefined;
  const { keyBlock, credential, suiteId } = session;
  if (keyBlock === undefined || credential === undefined) return undefined;
  const replay = records.saveReplay();
  const stored: StoredDtlsConnection = {
    version: 1,
    localPort,
    address: peer.address,
    port: peer.port,
    identity: { mode: security.mode, identity: security.identity },
    credential: copyCredential(credential),
    suiteId,
    keyBlock: Buffer.from(keyBlock),
    readEpoch: 1,
    writeEpoch: records.writeEpoch,
    nextWriteSequence: records.nextWriteSequence,
    replayHighest: replay.highest,
    replayBitmap: replay.bitmap,
    lastActivity: source.lastActivity,
  };
  const { sessionId, connectionIds } = source;
  if (sessionId !== undefined && sessionId.length > 0) stored.sessionId = Buffer.from(sessionId);
  if (connectionIds !== undefined) {
    stored.connectionIds = { own: Buffer.from(connectionIds.own), peer: Buffer.from(connectionIds.peer) };
  }
  return stored;
}

/** The record layer of an adopted connection: its keys, its replay window, our record numbers going on. */
export function restoredRecordLayer(stored: StoredDtlsConnection, keys: ConnectionKeys): RecordLayer {
  const replay = ReplayWindow.restore(stored.replayHighest, stored.replayBitmap);
  // A margin past the saved high-water mark: no record number is used twice under these keys.
  const nextWriteSequence = stored.nextWriteSequence + WRITE_SEQUENCE_GAP;
  return RecordLayer.adopted(stored.connectionIds?.peer, keys, nextWriteSequence, replay);
}

function copyCredential(credential: SessionCredential): SessionCredential {
  switch (credential.kind) {
    case 'psk':
      return { kind: 'psk', salt: Buffer.from(credential.salt), fingerprint: Buffer.from(credential.fingerprint) };
    case 'rpk':
      return { kind: 'rpk', spki: Buffer.from(credential.spki) };
    case 'x509':
      return { kind: 'x509', chain: credential.chain.map((der) => Buffer.from(der)) };
  }
}
