/**
 * From a BootstrapConfig to the value trees a session writes: Security (/0) and Server (/1) instances for
 * each account, the bootstrap account when asked, ACL (/2) instances, and the other objects.
 */
import { LwM2mPath } from '../model/path';
import type {
  LwM2mMultipleResource,
  LwM2mNode,
  LwM2mObjectInstance,
  LwM2mResource,
  ObjectModelLookup,
  ResourceType,
  ResourceValue,
} from '../model/types';
import { fromPlain } from '../model/values';
import type { AccountSecurity, BootstrapConfig } from './config';
import { SECURITY_MODE_VALUE } from './config';

export type WriteKind = 'bootstrapAccount' | 'security' | 'server' | 'acl' | 'object';

export interface PlannedWrite {
  path: LwM2mPath;
  node: LwM2mNode;
  kind: WriteKind;
}

/** What was provisioned, in msg shape (no keys). */
export interface ProvisionedServer {
  shortServerId: number;
  uri: string;
  securityMode: string;
  securityInstanceId: number;
  serverInstanceId: number;
}

export interface BootstrapPlan {
  deletes: LwM2mPath[];
  writes: PlannedWrite[];
  servers: ProvisionedServer[];
}

export interface PlanContext {
  /** The device's bootstrap account instance (/0/x), when BS-Discover told it. */
  bootstrapInstanceId?: number;
}

const ACL_ALL = 1 | 2 | 4 | 8; // R W E D
const ACL_DEVICE = 1 | 2 | 4; // the Device object instance cannot be deleted
const ACL_CREATE = 16;

export function buildPlan(config: BootstrapConfig, model: ObjectModelLookup, context: PlanContext = {}): BootstrapPlan {
  const writes: PlannedWrite[] = [];
  // Known when BS-Discover told it, or when this configuration writes the bootstrap account itself (at /0/0 by default).
  const knownBootstrapInstance = config.bootstrapServer
    ? (config.bootstrapServer.instanceId ?? context.bootstrapInstanceId ?? 0)
    : context.bootstrapInstanceId;
  const bootstrapInstanceId = knownBootstrapInstance ?? 0;
  // Where the device keeps its bootstrap account is not known (no BS-Discover, a Bootstrap-Pack): devices keep it
  // at /0/0 (Wakaama, Leshan) or /0/1 (Anjay), so neither is used for the servers' accounts.
  const usedSecurity = new Set<number>(knownBootstrapInstance === undefined ? [0, 1] : [bootstrapInstanceId]);
  for (const server of config.servers)
    if (server.securityInstanceId !== undefined) usedSecurity.add(server.securityInstanceId);
  const usedServer = new Set<number>();
  for (const server of config.servers)
    if (server.serverInstanceId !== undefined) usedServer.add(server.serverInstanceId);

  if (config.bootstrapServer) {
    const account = config.bootstrapServer;
    const resources = securityResources(account, true);
    if (account.clientHoldOffTime !== undefined) resources.set(11, single(11, 'integer', account.clientHoldOffTime));
    if (account.accountTimeout !== undefined) resources.set(12, single(12, 'integer', account.accountTimeout));
    writes.push(instanceWrite(0, bootstrapInstanceId, resources, 'bootstrapAccount'));
  }

  const servers: ProvisionedServer[] = [];
  const serverWrites: PlannedWrite[] = [];
  for (const server of config.servers) {
    const securityInstanceId = server.securityInstanceId ?? nextFree(usedSecurity);
    const serverInstanceId = server.serverInstanceId ?? nextFree(usedServer);
    const security = securityResources(server, false);
    security.set(10, single(10, 'integer', server.shortServerId));
    writes.push(instanceWrite(0, securityInstanceId, security, 'security'));

    const resources = new Map<number, LwM2mResource>();
    resources.set(0, single(0, 'integer', server.shortServerId));
    resources.set(1, single(1, 'integer', server.lifetime));
    if (server.defaultMinPeriod !== undefined) resources.set(2, single(2, 'integer', server.defaultMinPeriod));
    if (server.defaultMaxPeriod !== undefined) resources.set(3, single(3, 'integer', server.defaultMaxPeriod));
    resources.set(6, single(6, 'boolean', server.notificationStoring));
    resources.set(7, single(7, 'string', server.binding));
    if (server.muteSend !== undefined) resources.set(23, single(23, 'boolean', server.muteSend));
    serverWrites.push(instanceWrite(1, serverInstanceId, resources, 'server'));
    servers.push({
      shortServerId: server.shortServerId,
      uri: server.uri,
      securityMode: server.securityMode,
      securityInstanceId,
      serverInstanceId,
    });
  }
  writes.push(...serverWrites);

  const objectWrites: PlannedWrite[] = [];
  for (const [pathText, plain] of Object.entries(config.objects)) {
    const path = LwM2mPath.parse(pathText);
    objectWrites.push({ path, node: fromPlain(plain, path, model), kind: 'object' });
  }
  objectWrites.sort((a, b) => compareIds(a.path, b.path));

  for (const entry of aclEntries(config, servers, objectWrites)) {
    const resources = new Map<number, LwM2mResource>();
    resources.set(0, single(0, 'integer', entry.objectId));
    resources.set(1, single(1, 'integer', entry.instanceId));
    const rights: LwM2mMultipleResource = { kind: 'multipleResource', id: 2, type: 'integer', instances: new Map() };
    for (const [ssid, bits] of entry.rights) rights.instances.set(ssid, bits);
    resources.set(2, rights);
    resources.set(3, single(3, 'integer', entry.owner));
    writes.push(instanceWrite(2, entry.aclInstanceId, resources, 'acl'));
  }
  writes.push(...objectWrites);
  return { deletes: config.deletePaths.map((text) => LwM2mPath.parse(text)), writes, servers };
}

interface AclInstance {
  aclInstanceId: number;
  objectId: number;
  instanceId: number;
  rights: Array<[number, number]>;
  owner: number;
}

/** Explicit entries, or with 'auto' and several servers: each server owns its Server instance; all share the rest. */
function aclEntries(config: BootstrapConfig, servers: ProvisionedServer[], objects: PlannedWrite[]): AclInstance[] {
  if (config.acl === 'none') return [];
  const first = servers[0].shortServerId;
  if (Array.isArray(config.acl)) {
    return config.acl.map((entry, i) => {
      const path = LwM2mPath.parse(entry.path);
      return {
        aclInstanceId: i,
        objectId: path.objectId!,
        instanceId: path.instanceId ?? 65535,
        rights: Object.entries(entry.rights).map(([ssid, bits]): [number, number] => [Number(ssid), bits]),
        owner: entry.owner ?? first,
      };
    });
  }
  if (servers.length < 2) return [];
  const out: AclInstance[] = [];
  const add = (objectId: number, instanceId: number, rights: Array<[number, number]>, owner: number): void => {
    out.push({ aclInstanceId: out.length, objectId, instanceId, rights, owner });
  };
  for (const server of servers)
    add(1, server.serverInstanceId, [[server.shortServerId, ACL_ALL]], server.shortServerId);
  const everyone = (bits: number): Array<[number, number]> => servers.map((s) => [s.shortServerId, bits]);
  add(3, 0, everyone(ACL_DEVICE), first);
  const instances = new Set<string>();
  const objectIds = new Set<number>();
  for (const write of objects) {
    const { objectId, instanceId } = write.path;
    if (objectId === undefined) continue;
    objectIds.add(objectId);
    const ids =
      instanceId !== undefined ? [instanceId] : write.node.kind === 'object' ? [...write.node.instances.keys()] : [];
    for (const id of ids) {
      if (objectId === 3 && id === 0) continue;
      const key = `${objectId}/${id}`;
      if (instances.has(key)) continue;
      instances.add(key);
      add(objectId, id, everyone(ACL_ALL), first);
    }
  }
  for (const objectId of objectIds) add(objectId, 65535, everyone(ACL_CREATE), first);
  return out;
}

function securityResources(account: AccountSecurity, bootstrap: boolean): Map<number, LwM2mResource> {
  const resources = new Map<number, LwM2mResource>();
  const empty = Buffer.alloc(0);
  resources.set(0, single(0, 'string', account.uri));
  resources.set(1, single(1, 'boolean', bootstrap));
  resources.set(2, single(2, 'integer', SECURITY_MODE_VALUE[account.securityMode]));
  const identity =
    account.securityMode === 'psk'
      ? Buffer.from(account.pskIdentity ?? '', 'utf8')
      : (account.publicKeyOrIdentity ?? empty);
  resources.set(3, single(3, 'opaque', identity));
  resources.set(4, single(4, 'opaque', account.serverPublicKey ?? empty));
  resources.set(
    5,
    single(5, 'opaque', account.securityMode === 'psk' ? (account.pskKey ?? empty) : (account.secretKey ?? empty)),
  );
  return resources;
}

function single(id: number, type: ResourceType, value: ResourceValue): LwM2mResource {
  return { kind: 'resource', id, type, value };
}

function instanceWrite(
  objectId: number,
  instanceId: number,
  resources: Map<number, LwM2mResource>,
  kind: WriteKind,
): PlannedWrite {
  const node: LwM2mObjectInstance = { kind: 'instance', id: instanceId, resources };
  return { path: new LwM2mPath(objectId, instanceId), node, kind };
}

function nextFree(used: Set<number>): number {
  let id = 0;
  while (used.has(id)) id++;
  used.add(id);
  return id;
}

function compareIds(a: LwM2mPath, b: LwM2mPath): number {
  const ids = (p: LwM2mPath): number[] => [
    p.objectId ?? -1,
    p.instanceId ?? -1,
    p.resourceId ?? -1,
    p.resourceInstanceId ?? -1,
  ];
  const x = ids(a);
  const y = ids(b);
  for (let i = 0; i < 4; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return 0;
}
