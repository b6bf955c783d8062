/**
 * Fetches a firmware package from a Package URI (/5/0/1): coap:// with CoAP GET + Block2 through the
 * device's own CoapEndpoint (coaps:// too: that endpoint speaks DTLS when the device talks DTLS to that peer),
 * http:// and https:// with node:http(s) (https trusting the given CAs, else the system's). Failures carry the Firmware
 * Update Result the device should report (LwM2M Core E.6, /5/0/5).
 */
import { Lwm2mError } from '../errors';
import { lookup } from 'node:dns/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import { isIP } from 'node:net';
import type { IncomingResponse, OutgoingRequest } from '../coap/types';
import type { PeerAddress } from '../transport/types';

/** Firmware Update Result codes (/5/0/5). */
export const UpdateResult = {
  INITIAL: 0,
  SUCCESS: 1,
  NOT_ENOUGH_FLASH: 2,
  OUT_OF_RAM: 3,
  CONNECTION_LOST: 4,
  INTEGRITY_FAILURE: 5,
  UNSUPPORTED_PACKAGE: 6,
  INVALID_URI: 7,
  UPDATE_FAILED: 8,
  UNSUPPORTED_PROTOCOL: 9,
  CANCELLED: 10,
  DEFERRED: 11,
} as const;

/** Trust for https:// downloads: the CAs to trust instead of the system's, or no check at all. */
export interface DownloadTls {
  /** CA certificates (PEM) the server's certificate must chain to. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** false: accept any certificate (tests only). Default true. */
  rejectUnauthorized?: boolean;
}

export class DownloadError extends Lwm2mError {
  override name = 'DownloadError';
  constructor(
    message: string,
    /** The Update Result to report. */
    readonly result: number,
  ) {
    super(message);
  }
}

export interface DownloadDeps {
  /** CoAP request through the device's endpoint (Block2 reassembled). */
  coapRequest(peer: PeerAddress, request: OutgoingRequest): Promise<IncomingResponse>;
  /** 4 or 6: the family of the device's socket, to resolve a host name to an address it can reach. */
  family?: 4 | 6;
  timeoutMs: number;
  maxSize: number;
  /** https:// only. */
  tls?: DownloadTls;
}

export async function downloadPackage(uri: string, deps: DownloadDeps): Promise<Buffer> {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new DownloadError(`invalid Package URI "${uri}"`, UpdateResult.INVALID_URI);
  }
  switch (url.protocol) {
    case 'coap:':
    case 'coaps:':
      return downloadCoap(url, deps);
    case 'http:':
    case 'https:':
      return downloadHttp(url, deps);
    default:
      throw new DownloadError(`unsupported protocol ${url.protocol} in "${uri}"`, UpdateResult.UNSUPPORTED_PROTOCOL);
  }
}

async function downloadCoap(url: URL, deps: DownloadDeps): Promise<Buffer> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let address = host;
  if (isIP(host) === 0) {
    try {
      address = (await lookup(host, { family: deps.family ?? 0 })).address;
    } catch (err) {
      throw new DownloadError(`cannot resolve ${host}: ${(err as Error).message}`, UpdateResult.INVALID_URI);
    }
  }
  const port = url.port === '' ? (url.protocol === 'coaps:' ? 5684 : 5683) : Number(url.port);
  const pathSegments = url.pathname
    .split('/')
    .filter((segment) => segment !== '')
    .map((segment) => decodeURIComponent(segment));
  const query = url.search === '' ? [] : url.search.slice(1).split('&').map(decodeURIComponent);
  let response: IncomingResponse;
  try {
    response = await deps.coapRequest(
      { address, port },
      { method: 'GET', pathSegments, query, timeoutMs: deps.timeoutMs },
    );
  } catch (err) {
    throw new DownloadError(
      `download from ${url.href} failed: ${(err as Error).message}`,
      UpdateResult.CONNECTION_LOST,
    );
  }
  if (response.code === '4.04' || response.code === '4.00' || response.code === '4.02') {
    throw new DownloadError(`${url.href}: ${response.code}`, UpdateResult.INVALID_URI);
  }
  if (!response.code.startsWith('2.')) {
    throw new DownloadError(`${url.href}: ${response.code}`, UpdateResult.CONNECTION_LOST);
  }
  if (response.payload.length > deps.maxSize) {
    throw new DownloadError(`package of ${response.payload.length} bytes is too large`, UpdateResult.NOT_ENOUGH_FLASH);
  }
  return response.payload;
}

function downloadHttp(url: URL, deps: DownloadDeps): Promise<Buffer> {
  const secure = url.protocol === 'https:';
  const get = secure ? https.get : http.get;
  const tls = secure && deps.tls ? deps.tls : {};
  return new Promise<Buffer>((resolve, reject) => {
    const request = get(url, { timeout: deps.timeoutMs, agent: false, ...tls }, (response) => {
      const status = response.statusCode ?? 0;
      if (status !== 200) {
        response.resume();
        reject(
          new DownloadError(
            `${url.href}: HTTP ${status}`,
            status === 404 || status === 400 || status === 410
              ? UpdateResult.INVALID_URI
              : UpdateResult.CONNECTION_LOST,
          ),
        );
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > deps.maxSize) {
          request.destroy();
          reject(new DownloadError(`package larger than ${deps.maxSize} bytes`, UpdateResult.NOT_ENOUGH_FLASH));
          return;
        }
        chunks.push(chunk);
      });
      response.on('end', () => resolve(Buffer.concat(chunks, size)));
      response.on('error', (err) =>
        reject(new DownloadError(`${url.href}: ${err.message}`, UpdateResult.CONNECTION_LOST)),
      );
    });
    request.on('timeout', () => request.destroy(new Error('timeout')));
    request.on('error', (err) =>
      reject(new DownloadError(`${url.href}: ${err.message}`, UpdateResult.CONNECTION_LOST)),
    );
  });
}
