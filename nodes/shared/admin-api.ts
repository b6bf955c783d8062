/**
 * The device browser's admin HTTP API (the editor's "LwM2M" sidebar tab): the LwM2M servers of the running
 * flows, their devices, and device management from the editor. Mounted on Node-RED's admin app, so
 * `adminAuth` applies; each route needs `lwm2m.read` (see what the server knows, Read and Discover) or
 * `lwm2m.write` (anything that changes a device: Write, Execute, Create, Delete, Observe and its cancel).
 * Every route is for the editor's own page only (admin-guard.ts): JSON bodies, no foreign Origin.
 *
 * Live changes go over Node-RED's comms (see fleet-watch.ts): counts and change signals for the device
 * list, log entries for a device an editor has open.
 */
import type { BootstrapServer } from '../../lib/bootstrap/bootstrap-server';
import { InvalidPathError, LwM2mPath } from '../../lib/model/path';
import { jsonSafe, objectTreeJson, valuesByPath } from '../../lib/model/tree-json';
import { ValueError } from '../../lib/model/values';
import { Lwm2mRequestError } from '../../lib/server/errors';
import type { Lwm2mServer } from '../../lib/server/lwm2m-server';
import type { Registration } from '../../lib/server/registration';
import type { Lwm2mBootstrapConfigNode } from './bootstrap-config';
import { allowsEveryOrigin, crossSiteGuard } from './admin-guard';
import type { GuardedRequest, GuardedResponse } from './admin-guard';
import { BootstrapWatch, ServerWatch, countsOf } from './fleet-watch';
import type { DeviceSummary } from './fleet-watch';
import type { NodeAPI } from './node-red';
import type { Lwm2mServerConfigNode } from './server-config';
import type { StoreProblemLog } from '../../lib/store/problems';
import { bootstrapStoreProblemsOf } from './bootstrap-host';
import { storeProblemsOf } from './server-host';
import { answerPathSuggestions } from './path-suggestions';
import { t } from './i18n';

/** The owner of observations made from the editor: flows' observations of the same path are left alone. */
export const BROWSER_OWNER = 'lwm2m-device-browser';
/** Where the routes live under Node-RED's admin root. */
export const API_ROOT = '/lwm2m';
/** A page of the device list holds at most this many devices. */
const MAX_PAGE = 500;

export interface AdminRequest extends GuardedRequest {
  params: Record<string, string>;
  query: Record<string, unknown>;
  body?: unknown;
}

export interface AdminResponse extends GuardedResponse {
  status(code: number): AdminResponse;
  json(body: unknown): void;
}

type Handler = (req: AdminRequest, res: AdminResponse, next: (err?: unknown) => void) => void;

interface AdminApp {
  get(path: string, ...handlers: Handler[]): void;
  post(path: string, ...handlers: Handler[]): void;
  delete(path: string, ...handlers: Handler[]): void;
}

/** What the device browser uses of Node-RED's API beyond what nodes use. */
export interface DeviceBrowserRED extends NodeAPI {
  httpAdmin: AdminApp;
  auth?: { needsPermission(permission: string): Handler };
  comms: { publish(topic: string, data: unknown, retain?: boolean): void };
  events: { on(event: string, listener: (...args: unknown[]) => void): void };
  nodes: NodeAPI['nodes'] & { eachNode(callback: (def: { id: string; type: string; name?: string }) => void): void };
}

/** An HTTP error with the JSON body the editor shows: `{ error, code }`. */
class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

interface State {
  RED: DeviceBrowserRED;
  serverWatches: Map<string, ServerWatch>;
  bootstrapWatches: Map<string, BootstrapWatch>;
}

let state: State | undefined;
/** Admin apps that already have our routes: one set of routes per app, however often the module is loaded. */
const appsWithRoutes = new WeakSet<object>();
const eventSourcesHeard = new WeakSet<object>();

/**
 * Installs the admin routes and the watches, once per admin app (Node-RED has one; the test helper makes a
 * new one per flow load). Called when the plugin module loads, not per config node.
 */
export function installDeviceBrowser(RED: DeviceBrowserRED): void {
  state = { serverWatches: new Map(), bootstrapWatches: new Map(), ...state, RED };
  if (RED.events && !eventSourcesHeard.has(RED.events)) {
    eventSourcesHeard.add(RED.events);
    // Each deploy makes new config nodes (and maybe new servers): watch them from the start, so a device's
    // log holds its registration even when nobody had the browser open.
    RED.events.on('flows:started', () => {
      if (!state) return; // reset (tests): nothing to watch for
      try {
        reconcile();
      } catch (err) {
        state?.RED.log.warn(t('warnings.browser', { problem: (err as Error).message }));
      }
    });
  }
  const app = RED.httpAdmin;
  if (!app || appsWithRoutes.has(app)) return;
  if (!RED.auth?.needsPermission) {
    RED.log.warn(t('warnings.browser', { problem: t('warnings.browserNoAuth') }));
    return;
  }
  appsWithRoutes.add(app);
  if (allowsEveryOrigin(RED.settings.httpAdminCors)) {
    RED.log.warn(t('warnings.browser', { problem: t('warnings.browserCors') }));
  }
  // Checked before the permissions: a cross-site request is refused whoever it claims to be.
  const sameSite = crossSiteGuard(() => (state?.RED ?? RED).settings.httpAdminCors);
  const canRead: Handler[] = [sameSite, RED.auth.needsPermission('lwm2m.read')];
  const canWrite: Handler[] = [sameSite, RED.auth.needsPermission('lwm2m.write')];
  const device = `${API_ROOT}/servers/:serverId/devices/:endpoint`;

  app.get(
    `${API_ROOT}/servers`,
    ...canRead,
    route(async () => ({ servers: await listServers() })),
  );
  app.get(`${API_ROOT}/servers/:serverId/devices`, ...canRead, route(listDevices));
  app.get(
    `${API_ROOT}/paths`,
    ...canRead,
    route((req) => answerPathSuggestions(req.query, current().RED.nodes)),
  );
  app.get(device, ...canRead, route(deviceDetails));
  app.post(
    `${device}/watch`,
    ...canRead,
    route(async (req) => {
      const watch = serverWatch(req.params.serverId);
      watch.watchDevice(req.params.endpoint);
      return { watching: true };
    }),
  );
  app.delete(
    `${device}/watch`,
    ...canRead,
    route(async (req) => {
      serverWatch(req.params.serverId).unwatchDevice(req.params.endpoint);
      return { watching: false };
    }),
  );
  app.post(`${device}/read`, ...canRead, route(operation('Read')));
  app.post(`${device}/discover`, ...canRead, route(operation('Discover')));
  app.post(`${device}/write`, ...canWrite, route(operation('Write')));
  app.post(`${device}/execute`, ...canWrite, route(operation('Execute')));
  app.post(`${device}/create`, ...canWrite, route(operation('Create')));
  app.post(`${device}/delete`, ...canWrite, route(operation('Delete')));
  app.post(`${device}/observe`, ...canWrite, route(operation('Observe')));
  app.post(`${device}/cancel-observation`, ...canWrite, route(operation('Cancel-Observation')));
  app.get(
    `${API_ROOT}/bootstrap/:serverId`,
    ...canRead,
    route(async (req) => {
      const watch = bootstrapWatch(req.params.serverId);
      const bootstrap = watch.bootstrap;
      return {
        serverId: watch.configId,
        running: bootstrap.running,
        active: bootstrap.activeSessions(),
        recent: watch.entries().reverse(),
      };
    }),
  );
}

/** Wraps a handler: its result as JSON, an error as `{ error, code }` with a fitting status; never throws. */
function route(handler: (req: AdminRequest) => Promise<unknown>): Handler {
  return (req, res) => {
    let outcome: Promise<unknown>;
    try {
      outcome = handler(req);
    } catch (err) {
      outcome = Promise.reject(err);
    }
    outcome.then(
      (body) => res.json(body),
      (err: unknown) => {
        const { status, error, code } = describeError(err);
        res.status(status).json({ error, code });
      },
    );
  };
}

export function describeError(err: unknown): { status: number; error: string; code: string } {
  if (err instanceof ApiError) return { status: err.status, error: err.message, code: err.code };
  if (err instanceof Lwm2mRequestError) {
    const code = String(err.code);
    // The device answered with an error code: it is the device's answer (502), its code says which.
    if (/^[45]\.\d\d$/.test(code)) return { status: 502, error: err.message, code };
    const status: Record<string, number> = {
      'bad-request': 400,
      'not-registered': 404,
      timeout: 504,
      expired: 504,
      closed: 503,
      overloaded: 503,
      'no-session': 503,
      'cluster-unreachable': 503,
      cancelled: 409,
      'too-large': 413,
    };
    return { status: status[code] ?? 502, error: err.message, code };
  }
  if (err instanceof ValueError || err instanceof InvalidPathError)
    return { status: 400, error: (err as Error).message, code: 'bad-request' };
  return { status: 500, error: err instanceof Error ? err.message : String(err), code: 'error' };
}

// ---- Finding servers -------------------------------------------------------------------------------

function current(): State {
  if (!state) throw new ApiError(503, t('errors.api.notInstalled'), 'closed');
  return state;
}

/** Config nodes of a type in the running flows, as live nodes. */
function configNodes<T>(type: string): T[] {
  const { RED } = current();
  const found: T[] = [];
  RED.nodes.eachNode((def) => {
    if (def.type !== type) return;
    const live = RED.nodes.getNode(def.id);
    if (live) found.push(live as unknown as T);
  });
  return found;
}

/**
 * Brings the watches in line with the running flows: one per config node, on the server it uses now;
 * watches of config nodes that are gone (or now use another server) are detached.
 */
function reconcile(): void {
  const { RED, serverWatches, bootstrapWatches } = current();
  const publish = (topic: string, data: unknown) => RED.comms.publish(topic, data, false);
  const servers = new Map(
    configNodes<Lwm2mServerConfigNode>('lwm2m-server')
      .filter((node) => node.server)
      .map((node) => [node.id, node]),
  );
  for (const [id, watch] of serverWatches) {
    if (servers.get(id)?.server !== watch.server) {
      watch.detach();
      serverWatches.delete(id);
    }
  }
  for (const [id, node] of servers)
    if (!serverWatches.has(id)) serverWatches.set(id, new ServerWatch(id, node.server, publish));

  const bootstraps = new Map(
    configNodes<Lwm2mBootstrapConfigNode>('lwm2m-bootstrap')
      .filter((node) => node.bootstrap)
      .map((node) => [node.id, node]),
  );
  for (const [id, watch] of bootstrapWatches) {
    if (bootstraps.get(id)?.bootstrap !== watch.bootstrap) {
      watch.detach();
      bootstrapWatches.delete(id);
    }
  }
  for (const [id, node] of bootstraps)
    if (!bootstrapWatches.has(id)) bootstrapWatches.set(id, new BootstrapWatch(id, node.bootstrap, publish));
}

function serverWatch(configId: string): ServerWatch {
  const { serverWatches, RED } = current();
  const live = RED.nodes.getNode(configId) as Lwm2mServerConfigNode | null;
  let watch = serverWatches.get(configId);
  if (!watch || !live || live.server !== watch.server) {
    reconcile();
    watch = serverWatches.get(configId);
  }
  if (!watch) throw new ApiError(404, t('errors.api.noServer', { id: configId }), 'no-server');
  return watch;
}

function bootstrapWatch(configId: string): BootstrapWatch {
  const { bootstrapWatches, RED } = current();
  const live = RED.nodes.getNode(configId) as Lwm2mBootstrapConfigNode | null;
  let watch = bootstrapWatches.get(configId);
  if (!watch || !live || live.bootstrap !== watch.bootstrap) {
    reconcile();
    watch = bootstrapWatches.get(configId);
  }
  if (!watch) throw new ApiError(404, t('errors.api.noBootstrap', { id: configId }), 'no-server');
  return watch;
}

interface ServerListing {
  id: string;
  kind: 'server' | 'bootstrap';
  name: string;
  running: boolean;
  address?: string;
  port?: number;
  securePort?: number;
  counts?: ReturnType<typeof countsOf>;
  /** What its store skipped or failed to write: `note` in a few words (counts), `messages` in full. */
  store?: { note?: string; messages: string[] };
}

async function listServers(): Promise<ServerListing[]> {
  reconcile();
  const { serverWatches, bootstrapWatches, RED } = current();
  const listing: ServerListing[] = [];
  for (const watch of serverWatches.values()) {
    const server: Lwm2mServer = watch.server;
    const node = RED.nodes.getNode(watch.configId);
    listing.push({
      id: watch.configId,
      kind: 'server',
      name: node?.name || defaultName('lwm2m', server.options.address, server.options.port),
      running: server.running,
      ...listenerPorts(server),
      counts: countsOf(await server.listRegistrations(), server),
      ...storeProblemsListing(storeProblemsOf(server)),
    });
  }
  for (const watch of bootstrapWatches.values()) {
    const bootstrap: BootstrapServer = watch.bootstrap;
    const node = RED.nodes.getNode(watch.configId);
    listing.push({
      id: watch.configId,
      kind: 'bootstrap',
      name: node?.name || defaultName('bootstrap', bootstrap.options.address, bootstrap.options.port),
      running: bootstrap.running,
      ...listenerPorts(bootstrap),
      ...storeProblemsListing(bootstrapStoreProblemsOf(bootstrap)),
    });
  }
  return listing;
}

function storeProblemsListing(problems: StoreProblemLog | undefined): Pick<ServerListing, 'store'> {
  const kept = problems?.list() ?? [];
  if (kept.length === 0) return {};
  const note = problems!.statusText();
  return { store: { ...(note ? { note } : {}), messages: kept.map((problem) => problem.message) } };
}

function listenerPorts(server: Lwm2mServer | BootstrapServer): Pick<ServerListing, 'address' | 'port' | 'securePort'> {
  return {
    address: server.address?.address ?? server.options.address,
    ...(server.address ? { port: server.address.port } : {}),
    ...(server.secureAddress ? { securePort: server.secureAddress.port } : {}),
  };
}

function defaultName(prefix: string, address: string, port: number): string {
  return `${prefix} ${address.includes(':') ? `[${address}]` : address}:${port}`;
}

// ---- Devices ---------------------------------------------------------------------------------------

/** A page of the device list, searched and filtered here (a fleet of 10,000 never goes to the browser whole). */
async function listDevices(req: AdminRequest) {
  const watch = serverWatch(req.params.serverId);
  watch.watchFleet();
  const registrations = await watch.server.listRegistrations();
  const search = text(req.query.q).toLowerCase();
  const filter = text(req.query.filter) || 'all';
  const offset = Math.max(0, Math.floor(Number(req.query.offset) || 0));
  const limit = Math.min(MAX_PAGE, Math.max(1, Math.floor(Number(req.query.limit) || 100)));
  const matching: DeviceSummary[] = [];
  for (const registration of registrations) {
    if (
      search &&
      !registration.endpoint.toLowerCase().includes(search) &&
      !registration.address.toLowerCase().includes(search)
    )
      continue;
    const summary = watch.summaryOf(registration);
    if (!matchesFilter(summary, filter)) continue;
    matching.push(summary);
  }
  matching.sort((a, b) => (a.endpoint < b.endpoint ? -1 : a.endpoint > b.endpoint ? 1 : 0));
  return {
    serverId: watch.configId,
    running: watch.server.running,
    counts: countsOf(registrations, watch.server),
    matched: matching.length,
    offset,
    limit,
    devices: matching.slice(offset, offset + limit),
  };
}

function matchesFilter(device: DeviceSummary, filter: string): boolean {
  switch (filter) {
    case 'awake':
      return device.state === 'awake';
    case 'sleeping':
      return device.state === 'sleeping';
    case 'queue':
      return device.queueMode;
    case 'secured':
      return device.secured;
    case 'unsecured':
      return !device.secured;
    default:
      return true;
  }
}

async function registrationOf(watch: ServerWatch, endpoint: string): Promise<Registration> {
  const registration = await watch.server.getRegistration(endpoint);
  if (!registration) throw new ApiError(404, t('errors.api.notRegistered', { endpoint }), 'not-registered');
  return registration;
}

async function deviceDetails(req: AdminRequest) {
  const watch = serverWatch(req.params.serverId);
  const endpoint = req.params.endpoint;
  const registration = await registrationOf(watch, endpoint);
  const observations = await watch.server.listObservations(endpoint);
  return {
    serverId: watch.configId,
    device: watch.summaryOf(registration),
    objects: objectTreeJson(registration.objects, watch.server.model),
    observations: observations.map((observation) => ({
      path: observation.path,
      byBrowser: observation.owners.includes(BROWSER_OWNER),
      byFlows: observation.owners.some((owner) => owner !== BROWSER_OWNER),
    })),
    log: watch.log(endpoint),
    additionalAttributes: registration.additionalAttributes,
    ...(registration.security ? { security: registration.security } : {}),
  };
}

type OperationName = 'Read' | 'Discover' | 'Write' | 'Execute' | 'Create' | 'Delete' | 'Observe' | 'Cancel-Observation';

/**
 * A device operation from the editor: runs it, logs the exchange in the device's log (and to an editor that
 * has it open), and answers what the editor shows (values by path, with the time they were read).
 */
function operation(name: OperationName): (req: AdminRequest) => Promise<unknown> {
  return async (req) => {
    const watch = serverWatch(req.params.serverId);
    const endpoint = req.params.endpoint;
    const body = (typeof req.body === 'object' && req.body !== null ? req.body : {}) as Record<string, unknown>;
    const path = text(body.path);
    if (!path) throw new ApiError(400, t('errors.api.needsPath', { operation: name }), 'bad-request');
    LwM2mPath.parse(path); // InvalidPathError: 400 with the reason
    const server = watch.server;
    const started = Date.now();
    try {
      const outcome = await watch.fromEditor(endpoint, () => run(server, name, endpoint, path, body));
      const entry = watch.recordExchange(endpoint, {
        name,
        path: outcome.path ?? path,
        code: outcome.code,
        rttMs: outcome.rttMs,
        text:
          t('log.exchange', { operation: name, path: outcome.path ?? path, code: outcome.code ?? t('log.done') }) +
          (outcome.summary ? `: ${outcome.summary}` : ''),
        ...(outcome.values ? { values: outcome.values } : {}),
      });
      return { ...outcome.body, endpoint, path: outcome.path ?? path, code: outcome.code, at: entry.at };
    } catch (err) {
      const { error, code } = describeError(err);
      watch.recordExchange(endpoint, {
        name,
        path,
        code,
        rttMs: Date.now() - started,
        text: t('log.failed', { operation: name, path, error }),
        error: true,
      });
      throw err;
    }
  };
}

interface OperationOutcome {
  path?: string;
  code?: string;
  rttMs?: number;
  summary?: string;
  values?: ReturnType<typeof valuesByPath>;
  body: Record<string, unknown>;
}

async function run(
  server: Lwm2mServer,
  name: OperationName,
  endpoint: string,
  path: string,
  body: Record<string, unknown>,
): Promise<OperationOutcome> {
  switch (name) {
    case 'Read': {
      const read = await server.read(endpoint, path);
      const values = valuesByPath(read.node, read.path);
      return {
        code: read.code,
        rttMs: read.rttMs,
        values,
        summary: summarise(read.value),
        body: { rttMs: read.rttMs, contentFormat: read.contentFormat, values, value: jsonSafe(read.value) },
      };
    }
    case 'Discover': {
      const found = await server.discover(endpoint, path);
      return {
        code: found.code,
        rttMs: found.rttMs,
        summary: t('log.links', { count: found.links.length }),
        body: { rttMs: found.rttMs, links: found.links },
      };
    }
    case 'Write': {
      if (!('value' in body)) throw new ApiError(400, t('errors.api.needsValue'), 'bad-request');
      const mode = body.mode === 'update' ? 'update' : 'replace';
      const written = await server.write(endpoint, path, body.value, { mode });
      return {
        code: written.code,
        rttMs: written.rttMs,
        summary: summarise(body.value),
        body: { rttMs: written.rttMs },
      };
    }
    case 'Execute': {
      const args = text(body.args);
      const executed = await server.execute(endpoint, path, args === '' ? undefined : args);
      return {
        code: executed.code,
        rttMs: executed.rttMs,
        ...(args ? { summary: t('log.arguments', { args }) } : {}),
        body: { rttMs: executed.rttMs },
      };
    }
    case 'Create': {
      const instanceId = body.instanceId === undefined || body.instanceId === '' ? undefined : Number(body.instanceId);
      if (instanceId !== undefined && !Number.isInteger(instanceId))
        throw new ApiError(400, t('errors.api.instanceId', { value: String(body.instanceId) }), 'bad-request');
      const created = await server.create(
        endpoint,
        path,
        body.value ?? {},
        instanceId === undefined ? {} : { instanceId },
      );
      return {
        code: created.code,
        rttMs: created.rttMs,
        summary: created.instancePath ? `created ${created.instancePath}` : undefined,
        body: { rttMs: created.rttMs, instancePath: created.instancePath },
      };
    }
    case 'Delete': {
      const deleted = await server.delete(endpoint, path);
      return { code: deleted.code, rttMs: deleted.rttMs, body: { rttMs: deleted.rttMs } };
    }
    case 'Observe': {
      const observed = await server.observe(endpoint, path, { owner: BROWSER_OWNER });
      const values = valuesByPath(observed.node, observed.path);
      return {
        code: observed.code,
        rttMs: observed.rttMs,
        values,
        summary: `${observed.joined ? 'joined the observation' : 'observing'}, now ${summarise(observed.value)}`,
        body: {
          rttMs: observed.rttMs,
          values,
          value: jsonSafe(observed.value),
          observationId: observed.observationId,
          joined: observed.joined,
        },
      };
    }
    case 'Cancel-Observation': {
      const cancelled = await server.cancelObservation(endpoint, path, BROWSER_OWNER);
      return {
        summary: cancelled ? 'cancelled' : 'was not observed by the browser',
        body: { cancelled },
      };
    }
  }
}

function summarise(value: unknown): string {
  const textValue = JSON.stringify(jsonSafe(value)) ?? 'undefined';
  return textValue.length > 120 ? `${textValue.slice(0, 119)}…` : textValue;
}

function text(value: unknown): string {
  return typeof value === 'string' ? value.trim() : typeof value === 'number' ? String(value) : '';
}

/**
 * For tests: detach every watch and forget the runtime, so later deploys in the same process (other tests'
 * flows) get no watches until the module is installed again.
 */
export function resetDeviceBrowser(): void {
  if (!state) return;
  for (const watch of state.serverWatches.values()) watch.detach();
  for (const watch of state.bootstrapWatches.values()) watch.detach();
  state = undefined;
}
