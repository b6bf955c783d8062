/**
 * The FirmwareDevice of one endpoint over an Lwm2mServer's public API (requests, observations, events), and
 * serverLink(), which pairs it with the server's package delivery: how a FirmwareJob given a server runs.
 */
import { requestTimeoutFor } from '../coap/timeouts';
import type { Lwm2mServer } from '../server/lwm2m-server';
import type { Notification } from '../server/observation-service';
import type { Registration } from '../server/registration';
import type {
  FirmwareDevice,
  FirmwareDeviceListener,
  FirmwareDeviceRegistration,
  FirmwareJobLink,
  FirmwareWriteOptions,
} from './device';
import { ServerPackageDelivery } from './delivery';

export class ServerFirmwareDevice implements FirmwareDevice {
  constructor(
    private readonly server: Lwm2mServer,
    readonly endpoint: string,
  ) {}

  registration(): Promise<FirmwareDeviceRegistration | undefined> {
    return this.server.getRegistration(this.endpoint);
  }

  async read(path: string, timeoutMs: number | undefined): Promise<unknown> {
    return (await this.server.read(this.endpoint, path, { timeoutMs })).value;
  }

  write(path: string, value: string | Buffer, options: FirmwareWriteOptions): Promise<unknown> {
    return this.server.write(this.endpoint, path, value, options);
  }

  execute(path: string, timeoutMs: number | undefined): Promise<unknown> {
    return this.server.execute(this.endpoint, path, undefined, { timeoutMs });
  }

  observe(path: string, owner: string, timeoutMs: number | undefined): Promise<unknown> {
    return this.server.observe(this.endpoint, path, { owner, timeoutMs });
  }

  releaseObservations(owner: string): Promise<void> {
    return this.server.releaseOwner(owner);
  }

  watch(listener: FirmwareDeviceListener): () => void {
    const onNotification = (n: Notification): void => {
      if (n.endpoint === this.endpoint) listener.notified(n.path, n.value);
    };
    const onBack = (registration: Registration): void => {
      if (registration.endpoint === this.endpoint) listener.back();
    };
    this.server.on('notification', onNotification);
    this.server.on('registered', onBack);
    this.server.on('updated', onBack);
    return () => {
      this.server.off('notification', onNotification);
      this.server.off('registered', onBack);
      this.server.off('updated', onBack);
    };
  }

  transferTimeoutMs(bytes: number): number {
    return requestTimeoutFor(bytes, this.server.options.coap);
  }
}

/** A FirmwareJob's link to `endpoint` through `server`. */
export function serverLink(server: Lwm2mServer, endpoint: string): FirmwareJobLink {
  return { device: new ServerFirmwareDevice(server, endpoint), packages: new ServerPackageDelivery(server) };
}
