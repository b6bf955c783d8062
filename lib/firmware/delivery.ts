/**
 * Image delivery for a pull: ServerPackageDelivery publishes a job's image on the package server of an
 * Lwm2mServer (over its CoAP/DTLS listeners, or its small HTTP/HTTPS server) and builds the URI the device
 * pulls it from, choosing for a wildcard bind the local address that routes to the device.
 */
import { createSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { Lwm2mServer } from '../server/lwm2m-server';
import type { FirmwareDeviceRegistration, PackageDelivery, PackagePublication, PackagePublishOptions } from './device';
import { Failure } from './failure';
import { packageServerFor, type HttpPublishedPackage, type PublishedPackage } from './package-server';

export class ServerPackageDelivery implements PackageDelivery {
  constructor(private readonly server: Lwm2mServer) {}

  async publish(
    image: Buffer,
    registration: FirmwareDeviceRegistration,
    options: PackagePublishOptions,
  ): Promise<PackagePublication> {
    const via = options.pullVia;
    if (via === 'http' || via === 'https') return this.publishHttp(image, registration, via, options);
    const base = await this.baseUri(registration, options.baseUri);
    const published = packageServerFor(this.server).publish(image, { onProgress: options.onProgress });
    return publication(base, published);
  }

  /** Pull over HTTP(S): the image on the HTTP(S) server of this Lwm2mServer (started when none runs). */
  private async publishHttp(
    image: Buffer,
    registration: FirmwareDeviceRegistration,
    via: 'http' | 'https',
    request: PackagePublishOptions,
  ): Promise<PackagePublication> {
    const bound = this.server.address;
    if (!bound) throw new Failure('the LwM2M server is not running', 'request-failed', 'downloading');
    let published: HttpPublishedPackage;
    const packages = packageServerFor(this.server);
    const options = { port: request.httpPort ?? 0, address: bound.address, onProgress: request.onProgress };
    try {
      published =
        via === 'https'
          ? await packages.publishHttps(image, {
              ...options,
              ...(request.httpsCertificate ? { certificate: request.httpsCertificate } : {}),
            })
          : await packages.publishHttp(image, options);
    } catch (err) {
      throw new Failure(
        `the ${via.toUpperCase()} package server does not start: ${(err as Error).message}`,
        'request-failed',
      );
    }
    try {
      const base =
        request.baseUri ?? `${via}://${await hostToward(published.address, registration.address)}:${published.port}`;
      return publication(base, published);
    } catch (err) {
      // Not served to anyone: the job never gets to expire it.
      published.expire();
      throw err;
    }
  }

  private async baseUri(registration: FirmwareDeviceRegistration, baseUri: string | undefined): Promise<string> {
    if (baseUri) return baseUri;
    // A DTLS device pulls over coaps:// from the server's DTLS listener (it serves /fw like the plain one).
    const secure = registration.security !== undefined;
    const bound = secure ? this.server.secureAddress : this.server.address;
    if (!bound) {
      throw new Failure(
        secure
          ? `${registration.endpoint} talks DTLS but the server has no DTLS listener: set baseUri`
          : 'the LwM2M server is not running',
        secure ? 'unsupported-delivery' : 'request-failed',
        'downloading',
      );
    }
    return `${secure ? 'coaps' : 'coap'}://${await hostToward(bound.address, registration.address)}:${bound.port}`;
  }
}

function publication(base: string, published: PublishedPackage): PackagePublication {
  return { uri: base.replace(/\/+$/, '') + published.path, expire: () => published.expire() };
}

/** `bound` as a URI host: for a wildcard bind, the local address that routes to `peer`. */
async function hostToward(bound: string, peer: string): Promise<string> {
  let host = bound;
  if (host === '::' || host === '0.0.0.0' || host === '') host = await localAddressToward(peer);
  if (host.startsWith('::ffff:')) host = host.slice(7);
  return isIPv6(host) ? `[${host}]` : host;
}

/** The local address the kernel would use to reach `address` (a connected UDP socket sends nothing). */
function localAddressToward(address: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(isIPv6(address) ? 'udp6' : 'udp4');
    socket.on('error', (err) => {
      socket.close();
      reject(
        new Failure(`no route to ${address}: set baseUri (${err.message})`, 'unsupported-delivery', 'downloading'),
      );
    });
    socket.connect(9, address, () => {
      const local = socket.address().address;
      socket.close();
      resolve(local);
    });
  });
}
