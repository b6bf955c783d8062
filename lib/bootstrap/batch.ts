/**
 * Bootstrap configurations in bulk, as a flow receives them: entries `{ endpoint, ...config }` (one object or
 * an array), or the CSV of a manufacturing batch, one device per line with one DM server account:
 * `endpoint,serverUri,securityMode,pskIdentity,pskKey,lifetime,binding` (a header line names the columns;
 * only endpoint and serverUri are required). Everything is checked before anything is stored.
 */
import type { ObjectModelLookup } from '../model/types';
import { BootstrapConfigError, parseBootstrapConfig } from './config';
import type { BootstrapConfig } from './config';

export interface BatchEntry {
  /** Endpoint name or pattern. */
  key: string;
  /** The plain configuration, as the store takes it. */
  plain: Record<string, unknown>;
  config: BootstrapConfig;
}

const CSV_COLUMNS = [
  'endpoint',
  'serverUri',
  'securityMode',
  'pskIdentity',
  'pskKey',
  'lifetime',
  'binding',
  'shortServerId',
];

export function parseBootstrapBatch(input: unknown, model?: ObjectModelLookup): BatchEntry[] {
  const entries =
    typeof input === 'string' || Buffer.isBuffer(input) ? csvEntries(input.toString()) : objectEntries(input);
  const seen = new Set<string>();
  return entries.map(({ key, plain, where }) => {
    if (seen.has(key)) throw new BootstrapConfigError(`${where}: endpoint "${key}" appears twice`);
    seen.add(key);
    try {
      return { key, plain, config: parseBootstrapConfig(plain, model) };
    } catch (err) {
      if (err instanceof BootstrapConfigError) throw new BootstrapConfigError(`${where} (${key}): ${err.message}`);
      throw err;
    }
  });
}

function objectEntries(input: unknown): Array<{ key: string; plain: Record<string, unknown>; where: string }> {
  const list = Array.isArray(input) ? input : [input];
  return list.map((item, i) => {
    const where = Array.isArray(input) ? `entry ${i + 1}` : 'the configuration';
    if (item === null || typeof item !== 'object' || Array.isArray(item))
      throw new BootstrapConfigError(`${where}: must be an object { endpoint, servers, ... }`);
    const { endpoint, ...plain } = item as Record<string, unknown>;
    if (typeof endpoint !== 'string' || endpoint.length === 0)
      throw new BootstrapConfigError(`${where}: needs an endpoint name or pattern (endpoint)`);
    return { key: endpoint, plain, where };
  });
}

function csvEntries(text: string): Array<{ key: string; plain: Record<string, unknown>; where: string }> {
  const lines = text.trim().split(/\r?\n/);
  const header = lines[0].split(',').map((name) => name.trim());
  const unknown = header.filter((name) => !CSV_COLUMNS.includes(name));
  if (!header.includes('endpoint') || !header.includes('serverUri'))
    throw new BootstrapConfigError(
      `a CSV batch needs a header line with at least endpoint,serverUri (columns: ${CSV_COLUMNS.join(',')})`,
    );
  if (unknown.length > 0) throw new BootstrapConfigError(`unknown CSV column ${unknown.join(', ')}`);
  const entries: Array<{ key: string; plain: Record<string, unknown>; where: string }> = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '' || line.startsWith('#')) continue;
    const cells = line.split(',').map((cell) => cell.trim());
    const row: Record<string, string> = {};
    header.forEach((name, column) => {
      if ((cells[column] ?? '') !== '') row[name] = cells[column];
    });
    const account: Record<string, unknown> = {
      shortServerId: row.shortServerId === undefined ? 1 : Number(row.shortServerId),
      uri: row.serverUri,
      securityMode: row.securityMode ?? (row.pskKey ? 'psk' : 'nosec'),
    };
    if (row.pskIdentity !== undefined || row.pskKey !== undefined)
      account.pskIdentity = row.pskIdentity ?? row.endpoint;
    if (row.pskKey !== undefined) account.pskKey = row.pskKey;
    if (row.lifetime !== undefined) account.lifetime = Number(row.lifetime);
    if (row.binding !== undefined) account.binding = row.binding;
    if (!row.endpoint) throw new BootstrapConfigError(`line ${i + 1}: the endpoint is missing`);
    entries.push({ key: row.endpoint, plain: { servers: [account] }, where: `line ${i + 1}` });
  }
  return entries;
}

/** A configuration for a msg or a listing: keys left out unless asked for. */
export function bootstrapConfigToPlain(
  key: string,
  config: BootstrapConfig,
  withSecrets = false,
): Record<string, unknown> {
  return {
    endpoint: key,
    servers: config.servers.map((server) => ({
      shortServerId: server.shortServerId,
      uri: server.uri,
      securityMode: server.securityMode,
      ...(server.pskIdentity !== undefined ? { pskIdentity: server.pskIdentity } : {}),
      ...(withSecrets && server.pskKey ? { pskKey: server.pskKey.toString('hex') } : {}),
      lifetime: server.lifetime,
      binding: server.binding,
    })),
    ...(config.bootstrapServer ? { bootstrapServer: { uri: config.bootstrapServer.uri } } : {}),
    ...(Object.keys(config.objects).length ? { objects: Object.keys(config.objects) } : {}),
  };
}
