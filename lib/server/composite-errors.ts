/**
 * Errors of composite operations (Read-, Write-, Observe-Composite) name the paths asked for. Their CoAP request
 * goes to the root (FETCH / or iPATCH / with the paths in the body), so the errors built from the request (no
 * answer, no DTLS session, a sleeping device that did not wake up, the device not registered) would say `/`.
 */
import { Lwm2mRequestError } from './errors';

/**
 * The error to give the caller of a composite operation: one that names no target of its own (its path is the
 * root or absent) is said again as `<operation> <paths> on <endpoint>: <reason>`, with `path` the paths as
 * `/3/0/0,/3303/0/5700` (msg.lwm2m.path of the flow's error); anything else is returned as it is.
 */
export function compositeFailure(err: unknown, operation: string, endpoint: string, target: string): unknown {
  if (!(err instanceof Lwm2mRequestError)) return err;
  if (err.path !== undefined && err.path !== '' && err.path !== '/') return err;
  const named = new Lwm2mRequestError(
    `${operation} ${target} on ${err.endpoint ?? endpoint}: ${reasonOf(err.message, err.endpoint ?? endpoint)}`,
    err.code,
    err.endpoint ?? endpoint,
    target,
  );
  (named as Error & { cause?: unknown }).cause = err;
  return named;
}

/**
 * The reason without the request's own name: errors about a request start with its path (`/ on dev-1: `) or its
 * method and path (`FETCH / on dev-1: `, `iPATCH /: `).
 */
function reasonOf(message: string, endpoint: string): string {
  const prefix = /^(?:[A-Za-z]+ )?\/(?: on (.*?))?: /.exec(message);
  if (!prefix || (prefix[1] !== undefined && prefix[1] !== endpoint)) return message;
  return message.slice(prefix[0].length);
}
