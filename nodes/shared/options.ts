import { Lwm2mRequestError } from '../../lib/server/errors';
import type { Node, NodeAPI, NodeMessage } from './node-red';

/** Options a node's config sets and a msg may fill. */

/** '' / 'auto' = negotiate; a number = that content format (node config wins, then msg.format). */
export function formatOption(configured: string | undefined, fromMsg: unknown): number | undefined {
  for (const candidate of [configured, fromMsg]) {
    if (candidate === undefined || candidate === null || candidate === '' || candidate === 'auto') continue;
    const format = Number(candidate);
    if (Number.isInteger(format) && format >= 0) return format;
  }
  return undefined;
}

export function timeoutOption(configured: string | number | undefined): number | undefined {
  const seconds = Number(configured);
  return configured === undefined || configured === '' || !Number.isFinite(seconds) || seconds <= 0
    ? undefined
    : seconds * 1000;
}

/**
 * A typedInput value (msg/flow/global/str/num/json/env/jsonata...) evaluated against the msg; an
 * unset type means msg.payload. A failure is a flow mistake ('bad-request') a Catch node can take.
 */
export function evaluateTypedValue(
  RED: NodeAPI,
  node: Node,
  value: string | undefined,
  type: string | undefined,
  msg: NodeMessage,
  what = 'value',
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const property = type ? (value ?? '') : 'payload';
    RED.util.evaluateNodeProperty(property, type || 'msg', node, msg, (err, result) =>
      err
        ? reject(new Lwm2mRequestError(`cannot evaluate the ${what}: ${err.message}`, 'bad-request'))
        : resolve(result),
    );
  });
}
