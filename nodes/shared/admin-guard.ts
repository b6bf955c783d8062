/**
 * Keeps the device browser's admin routes to the editor that serves them: no cross-site use.
 *
 * Node-RED answers every admin route with `Access-Control-Allow-Origin: *` (editor-api mounts `cors({origin:'*'})`
 * on the admin app, whatever the settings say) and parses form bodies as well as JSON. Without adminAuth (the
 * `npm start` default, common on home installs) any web page the user visits could then make the browser write to
 * a device with a form post, which needs no preflight, or read the fleet with fetch. So each of our routes:
 * - takes a POST body only as `application/json` (415 otherwise): a form or a `text/plain` post is a "simple"
 *   cross-site request a page can send without asking, JSON is not;
 * - refuses a request whose `Origin` (or, without one, `Referer`) is not the host the request was sent to, nor an
 *   origin the user's own `httpAdminCors` setting allows (403): a browser always sends `Origin` on a cross-origin
 *   request and on any POST, and page scripts cannot forge it or `Host`;
 * - drops Node-RED's blanket `Access-Control-Allow-Origin: *` from its answers unless the user configured
 *   `httpAdminCors` (then their CORS handler's header stands), so other sites cannot read device data either.
 * Requests with neither header (curl, scripts, server-to-server) pass: they are not a browser acting for someone.
 * adminAuth is unaffected: its Bearer token rides in a header a foreign page has no access to.
 */
import { t } from './i18n';

/** What the guard reads of a request (Express's request has all of it). */
export interface GuardedRequest {
  method?: string;
  headers: Record<string, string | string[] | undefined>;
}

/** What the guard uses of a response (Express's response has all of it). */
export interface GuardedResponse {
  status(code: number): GuardedResponse;
  json(body: unknown): void;
  removeHeader?(name: string): void;
}

/** The `origin` option of the `cors` package, as a user may put it in `httpAdminCors`. */
type CorsOrigin = unknown;

/** Why a request was refused, as the editor shows it: `{ error, code }` with this HTTP status. */
export interface Refusal {
  status: 403 | 415;
  error: string;
  code: 'cross-site' | 'unsupported-media-type';
}

/**
 * The guard as Express middleware. `corsSetting` gives the user's `httpAdminCors` (read per request: the settings
 * object is Node-RED's, tests swap it).
 */
export function crossSiteGuard(
  corsSetting: () => unknown,
): (req: GuardedRequest, res: GuardedResponse, next: (err?: unknown) => void) => void {
  return (req, res, next) => {
    const cors = corsSetting();
    const userCors = (typeof cors === 'object' && cors !== null) || typeof cors === 'function';
    // Node-RED's own `cors({origin:'*'})` ran first; with no CORS of the user's, our answers are for the editor only.
    if (!userCors) res.removeHeader?.('Access-Control-Allow-Origin');
    (userCors ? userOrigins(req, cors) : Promise.resolve(false))
      .then((allowedOrigin) => refusal(req, allowedOrigin))
      .then(
        (refused) => {
          if (refused) res.status(refused.status).json({ error: refused.error, code: refused.code });
          else next();
        },
        (err: unknown) => next(err),
      );
  };
}

/** The `origin` option of the user's `httpAdminCors`: options, or a delegate giving them per request (`cors(fn)`). */
function userOrigins(req: GuardedRequest, cors: unknown): Promise<CorsOrigin> {
  if (typeof cors !== 'function') return Promise.resolve((cors as { origin?: CorsOrigin }).origin);
  return new Promise((resolve, reject) =>
    (cors as (req: GuardedRequest, callback: (err: unknown, options?: { origin?: CorsOrigin }) => void) => void)(
      req,
      (err, options) => (err ? reject(err) : resolve(options ? options.origin : false)),
    ),
  );
}

/**
 * Why the request must be refused, or undefined. `allowedOrigin` is the `origin` of the user's `httpAdminCors`
 * (false: no CORS configured, only the editor's own host).
 */
export async function refusal(req: GuardedRequest, allowedOrigin: CorsOrigin): Promise<Refusal | undefined> {
  if ((req.method ?? 'GET').toUpperCase() === 'POST') {
    const contentType = header(req, 'content-type');
    const mediaType = (contentType ?? '').split(';')[0].trim().toLowerCase();
    if (mediaType !== 'application/json') {
      return {
        status: 415,
        error: contentType ? t('errors.api.notJson', { type: mediaType }) : t('errors.api.noContentType'),
        code: 'unsupported-media-type',
      };
    }
  }
  const origin = header(req, 'origin');
  const referer = origin === undefined ? header(req, 'referer') : undefined;
  if (origin === undefined && referer === undefined) return undefined; // not a browser acting for a page
  const from = origin ?? originOf(referer!);
  const host = header(req, 'host');
  if (from !== undefined && host !== undefined && sameHost(from, host)) return undefined;
  if (from !== undefined && from !== 'null' && (await corsAllows(from, allowedOrigin))) return undefined;
  return {
    status: 403,
    error: t('errors.api.crossSite', {
      header: origin !== undefined ? 'Origin' : 'Referer',
      origin: origin ?? referer,
      host: host ?? t('errors.api.noHost'),
    }),
    code: 'cross-site',
  };
}

function header(req: GuardedRequest, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function originOf(url: string): string | undefined {
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}

/**
 * True when the origin names the host the request came to. Only host and port are compared, the port with the
 * origin's scheme default: a proxy that ends TLS passes `https://` pages' requests on over plain HTTP.
 */
function sameHost(origin: string, hostHeader: string): boolean {
  let page: URL;
  try {
    page = new URL(origin);
  } catch {
    return false;
  }
  if (page.protocol !== 'http:' && page.protocol !== 'https:') return false;
  let target: URL;
  try {
    target = new URL(`${page.protocol}//${hostHeader}`);
  } catch {
    return false;
  }
  return page.host === target.host;
}

/** The `cors` package's rule for its `origin` option (a string, '*', a RegExp, a list, a boolean, a function). */
export async function corsAllows(origin: string, allowed: CorsOrigin): Promise<boolean> {
  if (allowed === undefined || allowed === '*' || allowed === true) return true;
  if (typeof allowed === 'string') return allowed === origin;
  if (allowed instanceof RegExp) return allowed.test(origin);
  if (Array.isArray(allowed)) {
    for (const item of allowed) if (typeof item !== 'function' && (await corsAllows(origin, item))) return true;
    return false;
  }
  if (typeof allowed === 'function') {
    const decided = await new Promise<unknown>((resolve, reject) =>
      (allowed as (origin: string, callback: (err: unknown, allow?: unknown) => void) => void)(origin, (err, allow) =>
        err ? reject(err) : resolve(allow),
      ),
    );
    return typeof decided !== 'function' && decided !== undefined && corsAllows(origin, decided);
  }
  return false;
}

/** True when the user's `httpAdminCors` lets every origin in (worth a warning: then only JSON guards the routes). */
export function allowsEveryOrigin(cors: unknown): boolean {
  if (typeof cors !== 'object' || cors === null) return false;
  const origin = (cors as { origin?: unknown }).origin;
  return origin === undefined || origin === '*' || origin === true;
}
