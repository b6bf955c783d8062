import { Lwm2mRequestError } from '../../lib/server/errors';
import type { NodeMessage, NodeStatus } from './node-red';
import { Status } from './status';
import { t } from './i18n';

/** `msg.topic` of this package: endpoint name followed by an LwM2M path, `dev-17/3303/0/5700`. */
export function topicOf(endpoint: string, path: string): string {
  return path === '/' ? endpoint : `${endpoint}${path}`;
}

/** Splits `dev-17/3303/0/5700` into endpoint and path; a topic without a path is an endpoint. */
export function parseTopic(topic: unknown): { endpoint?: string; path?: string } {
  if (typeof topic !== 'string' || topic === '') return {};
  const match = /^(.*?)((?:\/\d{1,5}){1,4})\/?$/.exec(topic);
  if (match && match[1] !== '') return { endpoint: match[1], path: match[2] };
  return { endpoint: topic };
}

function text(value: unknown): string | undefined {
  if (typeof value === 'string' && value.trim() !== '') return value.trim();
  if (typeof value === 'number') return String(value);
  return undefined;
}

/**
 * Endpoint and path for an operation: the node's configured value wins; the msg fills what it leaves
 * blank (msg.endpoint / msg.path, then msg.lwm2m.endpoint / .path, then msg.topic).
 */
export function resolveTarget(
  configured: { endpoint?: string; path?: string },
  msg: NodeMessage,
  needPath = true,
): { endpoint: string; path: string } {
  const details = (typeof msg.lwm2m === 'object' && msg.lwm2m !== null ? msg.lwm2m : {}) as Record<string, unknown>;
  const fromTopic = parseTopic(msg.topic);
  const endpoint = text(configured.endpoint) ?? text(msg.endpoint) ?? text(details.endpoint) ?? fromTopic.endpoint;
  const path = text(configured.path) ?? text(msg.path) ?? text(details.path) ?? fromTopic.path;
  if (!endpoint) {
    throw new Lwm2mRequestError(t('errors.noEndpoint'), 'bad-request');
  }
  if (needPath && !path) {
    throw new Lwm2mRequestError(t('errors.noPath'), 'bad-request', endpoint);
  }
  return { endpoint, path: path ?? '/' };
}

/**
 * An endpoint filter: empty or `*` matches every device; `*` and `?` are wildcards; `/re/` is a
 * regular expression.
 */
export function endpointMatcher(pattern: string | undefined): (endpoint: string) => boolean {
  const trimmed = (pattern ?? '').trim();
  if (trimmed === '' || trimmed === '*') return () => true;
  if (trimmed.length > 2 && trimmed.startsWith('/') && trimmed.endsWith('/')) {
    const regex = new RegExp(trimmed.slice(1, -1));
    return (endpoint) => regex.test(endpoint);
  }
  if (!/[*?]/.test(trimmed)) return (endpoint) => endpoint === trimmed;
  const regex = new RegExp(
    '^' +
      trimmed
        .split('')
        .map((char) => (char === '*' ? '.*' : char === '?' ? '.' : char.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
        .join('') +
      '$',
  );
  return (endpoint) => regex.test(endpoint);
}

export function isPattern(value: string | undefined): boolean {
  const trimmed = (value ?? '').trim();
  return (
    trimmed === '' || /[*?]/.test(trimmed) || (trimmed.length > 2 && trimmed.startsWith('/') && trimmed.endsWith('/'))
  );
}

/** Puts the reason on the msg (msg.lwm2m.code / .error) so a Catch node can branch on it, and returns the Error. */
export function failure(msg: NodeMessage, err: unknown, endpoint?: string, path?: string): Error {
  const error = err instanceof Error ? err : new Error(String(err));
  const code = error instanceof Lwm2mRequestError ? error.code : 'error';
  const details = (typeof msg.lwm2m === 'object' && msg.lwm2m !== null ? msg.lwm2m : {}) as Record<string, unknown>;
  msg.lwm2m = {
    ...details,
    endpoint: (error as Lwm2mRequestError).endpoint ?? endpoint ?? details.endpoint,
    path: (error as Lwm2mRequestError).path ?? path ?? details.path,
    code,
    error: error.message,
  };
  return error;
}

/**
 * Endpoint names (or patterns) a management node acts on: msg.endpoint, msg.payload (a name, a list of them,
 * or entries with an `endpoint`), or msg.topic. Undefined when there is none or one is not a name.
 */
export function namesFromMsg(msg: NodeMessage): string[] | undefined {
  const source = msg.endpoint ?? msg.payload ?? msg.topic;
  const names = (Array.isArray(source) ? source : [source]).map((item) =>
    item !== null && typeof item === 'object' ? (item as { endpoint?: unknown }).endpoint : item,
  );
  if (names.length === 0 || names.some((name) => typeof name !== 'string' || name.length === 0)) return undefined;
  return names as string[];
}

/**
 * The matcher of a node's endpoint filter, or undefined after telling why the filter is invalid (status and
 * error on the node, which then does nothing).
 */
export function endpointFilter(
  node: { status(status: NodeStatus): void; error(message: unknown): void },
  pattern: string | undefined,
): ((endpoint: string) => boolean) | undefined {
  try {
    return endpointMatcher(pattern);
  } catch (err) {
    node.status(Status.error(t('status.badEndpointFilter')));
    node.error(t('errors.badEndpointFilter', { pattern, error: (err as Error).message }));
    return undefined;
  }
}
