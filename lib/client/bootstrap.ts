/**
 * Client-side bootstrap helpers (LwM2M 1.1/1.2 Core §6.1, Transport §6.1): the Bootstrap-Discover answer,
 * and the check that the provisioned configuration holds a usable LwM2M Server account (Bootstrap-Finish).
 * The bootstrap state machine and the answers to the Bootstrap-Server live in bootstrap-handler.ts.
 */
import type { ResourceValue } from '../model/types';
import type { PskCredentials } from './dtls-transport';
import type { ClientInstance, ClientObject } from './object-tree';

/** Security Mode (/0/x/2) values, LwM2M 1.1 Core Appendix E.1. */
export const SECURITY_MODES: Record<number, string> = {
  0: 'PSK',
  1: 'RPK',
  2: 'Certificate',
  3: 'NoSec',
  4: 'Certificate with EST',
};

/** An LwM2M Server account found in the Security (0) and Server (1) objects. */
export interface ServerAccount {
  /** Security instance id (/0/x). */
  securityInstance: number;
  /** Server instance id (/1/x), the one whose Short Server ID matches. */
  serverInstance: number;
  shortServerId: number;
  /** LwM2M Server URI (/0/x/0). */
  uri: string;
  /** Security Mode (/0/x/2): 0 PSK or 3 NoSec (the only ones this client speaks). */
  securityMode: number;
  /** PSK Identity (/0/x/3, as UTF-8) and key (/0/x/5) for mode 0. */
  psk?: PskCredentials;
}

/** One resource's single value (undefined when absent or a multiple resource). */
export function resourceValue(instance: ClientInstance, resourceId: number): ResourceValue | undefined {
  const slot = instance.resources.get(resourceId);
  if (slot === undefined) return undefined;
  const content = slot.content(instance.path.append(resourceId));
  return content instanceof Map ? undefined : content;
}

function sortedInstances(object: ClientObject | undefined): ClientInstance[] {
  if (object === undefined) return [];
  return [...object.instances.values()].sort((a, b) => a.id - b.id);
}

/** True for the Security instance of the LwM2M Bootstrap-Server account (/0/x/1 Bootstrap-Server = true). */
export function isBootstrapAccount(instance: ClientInstance): boolean {
  return resourceValue(instance, 1) === true;
}

function integer(value: ResourceValue | undefined): number | undefined {
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (typeof value === 'bigint') return Number(value);
  return undefined;
}

/**
 * The first usable LwM2M Server account (lowest Security instance id), or the reasons there is none:
 * a Security instance with Bootstrap-Server false, a Short Server ID matched by a Server instance, a
 * coap:// or coaps:// URI, and a security mode this client speaks (0 PSK with identity and key, 3 NoSec).
 */
export function findServerAccount(
  security: ClientObject | undefined,
  server: ClientObject | undefined,
): { account: ServerAccount } | { error: string } {
  const candidates = sortedInstances(security).filter((instance) => !isBootstrapAccount(instance));
  if (candidates.length === 0) {
    return { error: 'no LwM2M Server account: no Security instance with Bootstrap-Server (/0/x/1) false' };
  }
  const problems: string[] = [];
  for (const instance of candidates) {
    const where = `/0/${instance.id}`;
    const ssid = integer(resourceValue(instance, 10));
    if (ssid === undefined) {
      problems.push(`${where} has no Short Server ID (${where}/10)`);
      continue;
    }
    const serverInstance = sortedInstances(server).find((s) => integer(resourceValue(s, 0)) === ssid);
    if (serverInstance === undefined) {
      problems.push(`no Server instance with Short Server ID ${ssid} (/1/x/0) for ${where}`);
      continue;
    }
    const uri = resourceValue(instance, 0);
    let scheme: string;
    try {
      scheme = new URL(String(uri)).protocol;
    } catch {
      problems.push(`${where}/0 is not a server URI: "${String(uri ?? '')}"`);
      continue;
    }
    const mode = integer(resourceValue(instance, 2)) ?? 0;
    if (mode !== 0 && mode !== 3) {
      const name = SECURITY_MODES[mode] ?? 'unknown';
      problems.push(`${where}: security mode ${mode} (${name}) is not supported (only 0 PSK and 3 NoSec)`);
      continue;
    }
    const wanted = mode === 0 ? 'coaps:' : 'coap:';
    if (scheme !== wanted) {
      problems.push(`${where}: security mode ${mode} (${SECURITY_MODES[mode]}) needs a ${wanted}// URI, not ${uri}`);
      continue;
    }
    const account: ServerAccount = {
      securityInstance: instance.id,
      serverInstance: serverInstance.id,
      shortServerId: ssid,
      uri: String(uri),
      securityMode: mode,
    };
    if (mode === 0) {
      const identity = resourceValue(instance, 3);
      const key = resourceValue(instance, 5);
      if (!Buffer.isBuffer(identity) || identity.length === 0 || !Buffer.isBuffer(key) || key.length === 0) {
        problems.push(`${where}: PSK mode needs an identity (${where}/3) and a key (${where}/5)`);
        continue;
      }
      account.psk = { identity: identity.toString('utf8'), key: Buffer.from(key) };
    }
    return { account };
  }
  return { error: problems.join('; ') };
}

/**
 * The Bootstrap-Discover answer (LwM2M 1.1 Core §5.2.7.3): `</>;lwm2m="1.1"`, then every object (with
 * `ver` when not 1.0) or its instances; Security instances of LwM2M Servers carry `ssid` and (1.1+) `uri`,
 * Server instances `ssid`; the Bootstrap-Server account carries neither.
 */
export function bootstrapDiscoverLinks(
  objects: Iterable<ClientObject>,
  objectId: number | undefined,
  lwm2mVersion: '1.0' | '1.1' | '1.2',
): string {
  const links = [`</>;lwm2m="${lwm2mVersion}"`];
  const sorted = [...objects].filter((o) => objectId === undefined || o.id === objectId).sort((a, b) => a.id - b.id);
  for (const object of sorted) {
    const version = object.announcedVersion;
    const instances = sortedInstances(object);
    if (version !== undefined && version !== '1.0') links.push(`</${object.id}>;ver=${version}`);
    else if (instances.length === 0) links.push(`</${object.id}>`);
    for (const instance of instances) {
      let link = `</${object.id}/${instance.id}>`;
      if (object.id === 0 && !isBootstrapAccount(instance)) {
        const ssid = integer(resourceValue(instance, 10));
        if (ssid !== undefined) link += `;ssid=${ssid}`;
        const uri = resourceValue(instance, 0);
        if (lwm2mVersion !== '1.0' && typeof uri === 'string' && uri !== '') {
          link += `;uri="${uri.replace(/["\\]/g, '\\$&')}"`;
        }
      } else if (object.id === 1) {
        const ssid = integer(resourceValue(instance, 0));
        if (ssid !== undefined) link += `;ssid=${ssid}`;
      }
      links.push(link);
    }
  }
  return links.join(',');
}
