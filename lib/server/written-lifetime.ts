/**
 * Recognises, in a request the server sent and the device accepted, a Write of the Lifetime resource (/1/x/1) of
 * this server's own account on the device: a Write of /1/x/1 itself, of the instance /1/x with resource 1 in it
 * (replace or partial update), or a Write-Composite naming either. The registration then expires on that lifetime.
 *
 * Which /1/x is this server's own account: LwM2M gives the server no way to ask, and the registration does not say.
 * - A device that announced exactly one Server object instance has one account: the one it registered with here
 *   (a device registers with each of its servers through that server's own account).
 * - With several, only an instance whose Short Server ID (/1/x/0) the server has read and found to be the one it was
 *   asked about (`Lwm2mServer.serverAccountPath(endpoint, shortServerId)`, the server-object node) is known to be
 *   ours; a Write of another instance's lifetime belongs to another server's registration and is not adopted.
 */
import type { IncomingResponse, OutgoingRequest } from '../coap/types';
import { decodeNode, decodePatch } from '../content';
import { ContentFormat } from '../content/types';
import { LwM2mPath } from '../model/path';
import type { LwM2mNode, ObjectModelLookup, ResourceValue } from '../model/types';
import type { Registration } from './registration';

const SERVER_OBJECT = '1';
const LIFETIME = 1;

/**
 * The Server object instance that is this server's account on the device: the only one it announced, or `known`
 * (learned from its Short Server ID) when it is one of those announced. Undefined when it cannot be told.
 */
function ownServerAccount(registration: Registration, known?: number): number | undefined {
  const instances = registration.objects[1]?.instances ?? [];
  if (instances.length === 1) return instances[0];
  return known !== undefined && instances.includes(known) ? known : undefined;
}

/** Cheap first check, on every request that is not a GET: could it write a Server object's lifetime? */
export function mayWriteLifetime(request: OutgoingRequest): boolean {
  const segments = request.pathSegments;
  if (request.payload === undefined || request.payload.length === 0) return false;
  if (request.method === 'iPATCH') return segments.length === 0;
  return (
    (request.method === 'PUT' || request.method === 'POST') &&
    segments[0] === SERVER_OBJECT &&
    (segments.length === 2 || (segments.length === 3 && segments[2] === String(LIFETIME)))
  );
}

/**
 * The lifetime (seconds) `request` writes into account `account` (/1/account/1), or undefined when it writes none
 * (another instance, another resource, a value that is not a valid lifetime, a payload we cannot read).
 */
function writtenLifetime(request: OutgoingRequest, account: number, model: ObjectModelLookup): number | undefined {
  if (!mayWriteLifetime(request)) return undefined;
  const payload = request.payload!;
  try {
    if (request.method === 'iPATCH') {
      const format = request.contentFormat ?? ContentFormat.SENML_CBOR;
      const { updates } = decodePatch(payload, format, model);
      const resource = updates.get(`/1/${account}/${LIFETIME}`);
      if (resource !== undefined) return lifetimeOf(resource);
      const instance = updates.get(`/1/${account}`);
      return instance === undefined ? undefined : lifetimeIn(instance);
    }
    const segments = request.pathSegments;
    if (segments[1] !== String(account)) return undefined;
    const path = LwM2mPath.parse('/' + segments.join('/'));
    const format = request.contentFormat ?? (path.isResource() ? ContentFormat.TEXT : ContentFormat.TLV);
    const node = decodeNode(payload, format, path, model);
    return path.isResource() ? lifetimeOf(node) : lifetimeIn(node);
  } catch {
    // The device accepted what it was sent; only we cannot read it back: nothing to adopt.
    return undefined;
  }
}

/** The Lifetime resource inside an instance node. */
function lifetimeIn(node: LwM2mNode): number | undefined {
  if (node.kind !== 'instance') return undefined;
  const resource = node.resources.get(LIFETIME);
  return resource === undefined ? undefined : lifetimeOf(resource);
}

function lifetimeOf(node: LwM2mNode): number | undefined {
  if (node.kind !== 'resource' || node.id !== LIFETIME) return undefined;
  return validLifetime(node.value);
}

/** A registration lifetime is 1 .. 2^32-1 seconds, as in the `lt` of a Register. */
function validLifetime(value: ResourceValue): number | undefined {
  const seconds = typeof value === 'bigint' ? Number(value) : value;
  if (typeof seconds !== 'number' || !Number.isInteger(seconds)) return undefined;
  return seconds >= 1 && seconds <= 0xffffffff ? seconds : undefined;
}

/**
 * Follows the writes a server sends: after a Write of the lifetime of the server's own account that the device
 * accepted, the registration is told (`adopt`). Also remembers which account is the server's, once learned.
 */
export class LifetimeWrites {
  /** Registration id -> the Server object instance known to be this server's account (multi-account devices). */
  private readonly knownAccounts = new Map<string, number>();

  constructor(
    private readonly model: ObjectModelLookup,
    private readonly adopt: (registrationId: string, lifetime: number) => Promise<unknown>,
    private readonly error: (error: Error) => void,
  ) {}

  /** /1/`instance` was read to hold this server's Short Server ID. */
  learnAccount(registrationId: string, instance: number): void {
    this.knownAccounts.set(registrationId, instance);
  }

  /** The registration ended. */
  forget(registrationId: string): void {
    this.knownAccounts.delete(registrationId);
  }

  /** The device answered `response` to `request`: resolves with it once a lifetime it accepted is adopted. */
  async follow(
    registration: Registration,
    request: OutgoingRequest,
    response: IncomingResponse,
  ): Promise<IncomingResponse> {
    if (response.code !== '2.04') return response;
    const account = ownServerAccount(registration, this.knownAccounts.get(registration.id));
    if (account === undefined) return response;
    const lifetime = writtenLifetime(request, account, this.model);
    if (lifetime === undefined) return response;
    try {
      await this.adopt(registration.id, lifetime);
    } catch (err) {
      // The write itself succeeded: its caller gets the device's answer; the store's problem is reported apart.
      this.error(err as Error);
    }
    return response;
  }
}
