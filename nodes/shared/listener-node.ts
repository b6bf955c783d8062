import path from 'node:path';
import type { DropReport } from '../../lib/dtls/drops';
import type { PeerAddress } from '../../lib/transport/types';
import type { Node, NodeAPI } from './node-red';
import { t } from './i18n';

/** A file or folder setting: relative to the Node-RED user directory, where flows and settings live. */
export function userDirPath(RED: NodeAPI, setting: string | undefined): string {
  const text = (setting ?? '').trim();
  return text && !path.isAbsolute(text) ? path.resolve(RED.settings.userDir ?? process.cwd(), text) : text;
}

/** Status text of a server's listeners as bound (port 0 picks one): ':5683/:5684', plain first. */
export function boundPorts(
  plainEnabled: boolean,
  server: { address: PeerAddress | undefined; secureAddress: PeerAddress | undefined },
): string {
  return [plainEnabled ? server.address?.port : undefined, server.secureAddress?.port]
    .filter((bound) => bound !== undefined)
    .map((bound) => `:${bound}`)
    .join('/');
}

/**
 * A 'handshakeFailed' listener that warns on the node. A device with a wrong key retries every few seconds:
 * one warning per address and reason a minute.
 */
export function handshakeWarner(node: Node): (peer: PeerAddress, reason: string) => void {
  const warnedUntil = new Map<string, number>();
  return (peer, reason) => {
    const key = `${peer.address}|${reason}`;
    const now = Date.now();
    if ((warnedUntil.get(key) ?? 0) > now) return;
    if (warnedUntil.size > 1000) warnedUntil.clear();
    warnedUntil.set(key, now + 60_000);
    node.warn(t('warnings.handshakeFailed', { address: peer.address, port: peer.port, reason }));
  };
}

/**
 * A 'dtlsRecordsDropped' listener that warns on the node. The server reports the first drop of a reason, then
 * at most one per reason a minute, with the counts: a silent drop on the wire still leaves a line in the log.
 */
export function dropWarner(node: Node): (drop: DropReport) => void {
  return (drop) => {
    const where = drop.peer.address.includes(':') ? `[${drop.peer.address}]` : drop.peer.address;
    const counts =
      drop.total === 1 ? '' : t('warnings.recordsDroppedCounts', { total: drop.total, since: drop.sinceLastReport });
    node.warn(
      t('warnings.recordDropped', {
        address: where,
        port: drop.peer.port,
        reason: drop.reason,
        description: drop.description,
      }) + counts,
    );
  };
}
