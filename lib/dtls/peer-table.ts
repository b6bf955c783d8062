/**
 * The DTLS transport's table of associations: by the peer's address and port, and by the Connection
 * ID we gave it (RFC 9146), so that a record carrying our CID finds its session from any address;
 * one association per address; how many are established.
 */

import { randomBytes } from 'node:crypto';
import type { Peer } from '../transport/types';
import type { DtlsConnection } from './connection';

/**
 * Length of the Connection IDs we hand out: 6 random bytes make a collision among even a million
 * sessions unlikely (and one is checked for anyway), and cost 6 bytes per record.
 */
export const CONNECTION_ID_LENGTH = 6;

export class PeerTable {
  private readonly byAddress = new Map<string, DtlsConnection>();
  /** Sessions by the hex of the Connection ID we gave them. */
  private readonly byId = new Map<string, DtlsConnection>();
  private established = 0;

  /** Established sessions (adopted ones included). */
  get sessionCount(): number {
    return this.established;
  }

  /** The association at this address and port (its peer key). */
  get(key: string): DtlsConnection | undefined {
    return this.byAddress.get(key);
  }

  /** The association a record is for: by our CID when it carries one, else by the address it came from. */
  route(cid: Buffer | undefined, from: Peer): DtlsConnection | undefined {
    return cid !== undefined ? this.byId.get(cid.toString('hex')) : this.byAddress.get(from.key);
  }

  /** Whether a current association has this Connection ID of ours. */
  hasId(id: Buffer): boolean {
    return this.byId.has(id.toString('hex'));
  }

  /** Every association (a copy: callers close connections as they go). */
  all(): DtlsConnection[] {
    return [...this.byAddress.values()];
  }

  /** Files the connection under its address and its CID. */
  add(connection: DtlsConnection): void {
    this.byAddress.set(connection.peer.key, connection);
    if (connection.connectionIds !== undefined) {
      this.byId.set(connection.connectionIds.own.toString('hex'), connection);
    }
  }

  /** An adopted connection: established from the start. */
  addEstablished(connection: DtlsConnection): void {
    this.add(connection);
    this.established++;
  }

  /** A handshake in the table completed. */
  nowEstablished(): void {
    this.established++;
  }

  /** An established session ended (or was handed over): forgotten. */
  endSession(connection: DtlsConnection): void {
    this.established--;
    this.forget(connection);
  }

  /**
   * The connection's records now come from its new address (`previous` was its old one). Whatever
   * had the new address before is stale: the NAT now maps it to this client.
   */
  moved(connection: DtlsConnection, previous: Peer): void {
    const occupant = this.byAddress.get(connection.peer.key);
    if (occupant !== undefined && occupant !== connection) {
      if (occupant.state === 'established') occupant.close('address taken over by a moved session', false);
      else occupant.fail(undefined, 'address taken over by a moved session');
    }
    if (this.byAddress.get(previous.key) === connection) this.byAddress.delete(previous.key);
    this.byAddress.set(connection.peer.key, connection);
  }

  forget(connection: DtlsConnection): void {
    if (this.byAddress.get(connection.peer.key) === connection) this.byAddress.delete(connection.peer.key);
    if (connection.connectionIds !== undefined) {
      const id = connection.connectionIds.own.toString('hex');
      if (this.byId.get(id) === connection) this.byId.delete(id);
    }
  }

  /** Closes the established sessions with no authentic record since `cutoff` (ms since the epoch). */
  closeIdle(cutoff: number): void {
    for (const connection of this.all()) {
      if (connection.state === 'established' && connection.lastActivity < cutoff) {
        connection.close('idle timeout', false);
      }
    }
  }

  /** A Connection ID no current session has. */
  newConnectionId(): Buffer {
    for (;;) {
      const id = randomBytes(CONNECTION_ID_LENGTH);
      if (!this.byId.has(id.toString('hex'))) return id;
    }
  }
}
