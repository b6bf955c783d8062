import type { SecureListenerOptions } from '../../lib/server/lwm2m-server';
import { Lwm2mRequestError } from '../../lib/server/errors';
import type { Node, NodeAPI, NodeMessage } from './node-red';
import { t } from './i18n';

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
  what: 'value' | 'arguments' = 'value',
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const property = type ? (value ?? '') : 'payload';
    RED.util.evaluateNodeProperty(property, type || 'msg', node, msg, (err, result) =>
      err
        ? reject(
            new Lwm2mRequestError(
              t('errors.cannotEvaluate', { what: t(`errors.what.${what}`), error: err.message }),
              'bad-request',
            ),
          )
        : resolve(result),
    );
  });
}

/** The server's own secrets: kept in Node-RED's encrypted credentials, never in the flow file. */
export interface ServerCredentials {
  certificate?: string;
  privateKey?: string;
  trustedCertificates?: string;
}

/** `-----BEGIN CERTIFICATE-----` blocks of a PEM bundle, each on its own. */
export function splitPem(bundle: string | undefined): string[] {
  return (bundle ?? '').match(/-----BEGIN [A-Z ]+-----[\s\S]+?-----END [A-Z ]+-----/g) ?? [];
}

/**
 * What the config's credentials allow: X.509 with a certificate, RPK with the private key alone. CBC suites
 * only when the config node enables them (`dtlsCbc`).
 */
export function secureListener(
  port: number,
  credentials: ServerCredentials,
  config: { dtlsCbc?: boolean } = {},
): SecureListenerOptions {
  const listener: SecureListenerOptions = { port };
  if (config.dtlsCbc === true) listener.allowCbcSuites = true;
  const privateKey = credentials.privateKey?.trim();
  const chain = splitPem(credentials.certificate);
  const trusted = splitPem(credentials.trustedCertificates);
  if (privateKey) {
    listener.rawPublicKey = { privateKey };
    if (chain.length > 0) listener.certificate = { chain, privateKey };
  }
  if (trusted.length > 0) listener.trustedCertificates = trusted;
  return listener;
}

/** A number from a config field (text or number); the fallback when blank or not a number. */
export function numberOr(value: unknown, fallback: number): number {
  if (value === undefined || value === null || value === '') return fallback;
  const parsed = Number(value);
  return Number.isFinite(parsed) ? parsed : fallback;
}

/**
 * A write size limit from a KiB field: undefined when blank (the caller's default applies), Infinity for 0 (no
 * limit), else bytes. Not a number or negative: a bad setting the node reports with `what`.
 */
export function writeLimitOption(kib: unknown, what: string): number | undefined {
  if (kib === undefined || kib === null || String(kib).trim() === '') return undefined;
  const value = Number(String(kib).trim());
  if (!Number.isFinite(value) || value < 0) {
    throw new Lwm2mRequestError(t('errors.notKiB', { what, value: JSON.stringify(kib) }), 'bad-request');
  }
  return value === 0 ? Number.POSITIVE_INFINITY : Math.round(value * 1024);
}
