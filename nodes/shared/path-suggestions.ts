/**
 * Path suggestions for the editor's path fields (GET <admin root>/lwm2m/paths, read-only): the paths that continue
 * what the user typed, with their names from the object model of the chosen server (the built-in model while that
 * server is not deployed), and the objects and instances of a registered device when the node names one.
 */
import type { AnnouncedObject } from '../../lib/model/tree-json';
import { ObjectModel } from '../../lib/model/object-model';
import type { ObjectDefinition, ResourceDefinition } from '../../lib/model/types';
import { t } from './i18n';

export interface PathSuggestion {
  path: string;
  /** 1 object, 2 instance, 3 resource. */
  level: 1 | 2 | 3;
  /** The object's or resource's name in the model; `instance <id>` for an instance (in the runtime's language). */
  name: string;
  /** A resource's operations (R, W, RW, E, or '' for none). */
  operations?: string;
  /** A multiple resource (its resource instances are a level further). */
  multiple?: boolean;
  /** The device named in the request announced this object or instance. */
  onDevice?: boolean;
}

/** What a model must answer here (an ObjectModel does). */
export interface SuggestionModel {
  objectIds(): number[];
  getObject(objectId: number, version?: string): ObjectDefinition | undefined;
}

/** A list longer than this is cut: the user narrows it by typing on. */
export const MAX_SUGGESTIONS = 100;

let builtins: ObjectModel | undefined;
/** The model of a server that is not deployed (yet): the built-in definitions, made once. */
function builtinModel(): ObjectModel {
  builtins ??= ObjectModel.withBuiltins();
  return builtins;
}

/**
 * The paths that continue `typed` (one path, as typed so far: `/33`, `temp`, `/3303/`, `/3303/0/57`, `/3303/0/sens`):
 * - no complete id yet: objects whose id starts with the digits typed, or whose name holds the text typed;
 * - an object id: its instances (the device's, else instance 0), then the resources of its first instance whose
 *   name holds the text typed (so `/3303/sens` finds `/3303/0/5700`);
 * - an object and an instance: resources whose id starts with the digits, or whose name holds the text typed.
 * The device's objects come first. Deeper paths (resource instances) are not suggested: the model does not know them.
 */
export function suggestPaths(
  model: SuggestionModel,
  typed: string,
  device?: Readonly<Record<number, AnnouncedObject>>,
): PathSuggestion[] {
  const segments = typed.trim().replace(/^\//, '').split('/');
  const partial = segments.pop()!.trim().toLowerCase();
  const ids = segments.map((segment) => (/^\d{1,5}$/.test(segment) ? Number(segment) : NaN));
  if (ids.some((id) => Number.isNaN(id))) return [];
  const suggestions =
    ids.length === 0
      ? objectSuggestions(model, partial, device)
      : ids.length === 1
        ? instanceSuggestions(model, ids[0], partial, device)
        : ids.length === 2
          ? resourceSuggestions(model, ids[0], ids[1], partial, device)
          : [];
  return suggestions.slice(0, MAX_SUGGESTIONS);
}

/** Whether an id or name fits what was typed: digits continue the id; other text is part of the name. */
function fits(id: number, name: string, partial: string): boolean {
  if (partial === '') return true;
  return /^\d+$/.test(partial) ? String(id).startsWith(partial) : name.toLowerCase().includes(partial);
}

function objectSuggestions(
  model: SuggestionModel,
  partial: string,
  device: Readonly<Record<number, AnnouncedObject>> | undefined,
): PathSuggestion[] {
  const announced = device ? Object.keys(device).map(Number) : [];
  const known = model.objectIds().filter((id) => !announced.includes(id));
  const ordered = [...announced.sort((a, b) => a - b), ...known];
  const found: PathSuggestion[] = [];
  for (const objectId of ordered) {
    const definition = model.getObject(objectId, device?.[objectId]?.version);
    const name = definition?.name ?? t('suggestion.object', { id: objectId });
    if (!fits(objectId, name, partial)) continue;
    found.push({ path: `/${objectId}`, level: 1, name, ...(device?.[objectId] ? { onDevice: true } : {}) });
  }
  return found;
}

function instanceSuggestions(
  model: SuggestionModel,
  objectId: number,
  partial: string,
  device: Readonly<Record<number, AnnouncedObject>> | undefined,
): PathSuggestion[] {
  const announced = device?.[objectId];
  const instances = announced && announced.instances.length > 0 ? announced.instances : [0];
  const found: PathSuggestion[] = instances
    .filter((instanceId) => partial === '' || String(instanceId).startsWith(partial))
    .map((instanceId) => ({
      path: `/${objectId}/${instanceId}`,
      level: 2,
      name: t('suggestion.instance', { id: instanceId }),
      ...(announced ? { onDevice: true } : {}),
    }));
  // Digits are an instance id being typed; anything else may be a resource's name.
  if (/^\d+$/.test(partial)) return found;
  return [...found, ...resourceSuggestions(model, objectId, instances[0], partial, device)];
}

function resourceSuggestions(
  model: SuggestionModel,
  objectId: number,
  instanceId: number,
  partial: string,
  device: Readonly<Record<number, AnnouncedObject>> | undefined,
): PathSuggestion[] {
  const definition = model.getObject(objectId, device?.[objectId]?.version);
  if (!definition) return [];
  return Object.values(definition.resources)
    .sort((a, b) => a.id - b.id)
    .filter((resource) => fits(resource.id, resource.name, partial))
    .map((resource: ResourceDefinition) => ({
      path: `/${objectId}/${instanceId}/${resource.id}`,
      level: 3,
      name: resource.name,
      operations: resource.operations,
      multiple: resource.multiple,
    }));
}

/** What the route needs of a deployed lwm2m-server config node. */
interface DeployedServer {
  model: SuggestionModel;
  getRegistration(endpoint: string): Promise<{ objects: Readonly<Record<number, AnnouncedObject>> } | undefined>;
}

/**
 * The answer of GET lwm2m/paths?path=<typed>&server=<config node id>&endpoint=<name>: suggestions from the server's
 * model (`model: 'server'`) when that config node is deployed, else from the built-in one (`model: 'builtin'`); with
 * the device's objects and instances when the server holds a registration of that endpoint (`device: true`).
 */
export async function answerPathSuggestions(
  query: Record<string, unknown>,
  nodes: { getNode(id: string): unknown },
): Promise<{ suggestions: PathSuggestion[]; model: 'server' | 'builtin'; device: boolean }> {
  const typed = typeof query.path === 'string' ? query.path : '';
  const serverId = typeof query.server === 'string' ? query.server : '';
  const endpoint = typeof query.endpoint === 'string' ? query.endpoint.trim() : '';
  const server = serverId ? deployedServer(nodes.getNode(serverId)) : undefined;
  const registration = server && endpoint ? await server.getRegistration(endpoint) : undefined;
  return {
    suggestions: suggestPaths(server?.model ?? builtinModel(), typed, registration?.objects),
    model: server ? 'server' : 'builtin',
    device: registration !== undefined,
  };
}

/** The server of a deployed lwm2m-server config node (any other node, or none: undefined). */
function deployedServer(node: unknown): DeployedServer | undefined {
  const config = node as { type?: string; server?: Partial<DeployedServer> } | null;
  const server = config?.type === 'lwm2m-server' ? config.server : undefined;
  return typeof server?.getRegistration === 'function' && typeof server.model?.objectIds === 'function'
    ? (server as DeployedServer)
    : undefined;
}
