/**
 * The actions on this server's account on a device (its Server object instance /1/x): finding it (by Short Server
 * ID), Registration Update Trigger, Bootstrap-Request Trigger, Disable, default notification periods, Mute Send.
 */
import { Lwm2mRequestError } from '../errors';
import type { LifetimeWrites } from '../written-lifetime';
import type { OperationContext } from './context';
import { findTarget } from './context';
import type { DeviceOperations } from './device';
import type { OperationResult } from './results';

export class ServerAccountActions {
  constructor(
    private readonly context: OperationContext,
    private readonly device: DeviceOperations,
    private readonly lifetimeWrites: LifetimeWrites,
  ) {}

  /**
   * The path of the device's Server object instance (/1/x) that is this server's account: the only one
   * announced, or the one whose Short Server ID (/1/x/0) is `shortServerId`.
   */
  async serverAccountPath(endpointName: string, shortServerId?: number): Promise<string> {
    const { registration } = await findTarget(this.context.registrations, endpointName, '/1');
    const instances = registration.objects[1]?.instances ?? [];
    if (shortServerId === undefined) {
      if (instances.length === 1) return `/1/${instances[0]}`;
      if (instances.length === 0) {
        throw new Lwm2mRequestError(
          `${endpointName} announced no Server object instance`,
          'bad-request',
          endpointName,
          '/1',
        );
      }
      throw new Lwm2mRequestError(
        `${endpointName} has ${instances.length} Server accounts (/1/${instances.join(', /1/')}): give the Short Server ID`,
        'bad-request',
        endpointName,
        '/1',
      );
    }
    for (const instance of instances) {
      const read = await this.device.read(endpointName, `/1/${instance}/0`);
      if (read.value === shortServerId) {
        // Asked for by its Short Server ID, it is this server's account: a lifetime written there is ours.
        this.lifetimeWrites.learnAccount(registration.id, instance);
        return `/1/${instance}`;
      }
    }
    throw new Lwm2mRequestError(
      `${endpointName} has no Server account with Short Server ID ${shortServerId}`,
      '4.04',
      endpointName,
      '/1',
    );
  }

  /** Registration Update Trigger (/1/x/8): the device sends an Update at once (and wakes its queue). */
  async triggerRegistrationUpdate(endpointName: string, shortServerId?: number): Promise<OperationResult> {
    return this.device.execute(endpointName, `${await this.serverAccountPath(endpointName, shortServerId)}/8`);
  }

  /**
   * Bootstrap-Request Trigger (/1/x/9; Server object 1.1+, optional): the device goes back to its bootstrap
   * server and is provisioned again. A device without it answers 4.04 or 4.05: said plainly.
   */
  async triggerBootstrap(endpointName: string, shortServerId?: number): Promise<OperationResult> {
    const path = `${await this.serverAccountPath(endpointName, shortServerId)}/9`;
    try {
      return await this.device.execute(endpointName, path);
    } catch (err) {
      if (err instanceof Lwm2mRequestError && (err.code === '4.04' || err.code === '4.05'))
        throw new Lwm2mRequestError(
          `${endpointName} has no Bootstrap-Request Trigger (${path}, Server object 1.1+, optional), or no bootstrap ` +
            `server account to go back to (answered ${err.code}): it cannot be told to bootstrap again`,
          err.code,
          endpointName,
          path,
        );
      throw err;
    }
  }

  /**
   * Disable (/1/x/4): the device de-registers and stays away for its Disable Timeout (/1/x/5, which
   * `timeoutSeconds` writes first). The de-registration that follows is the expected outcome, not an error.
   */
  async disable(
    endpointName: string,
    options: { shortServerId?: number; timeoutSeconds?: number } = {},
  ): Promise<OperationResult> {
    const account = await this.serverAccountPath(endpointName, options.shortServerId);
    if (options.timeoutSeconds !== undefined)
      await this.device.write(endpointName, `${account}/5`, options.timeoutSeconds);
    return this.device.execute(endpointName, `${account}/4`);
  }

  /** Default notification periods for this server (/1/x/2 pmin, /1/x/3 pmax), used where no attribute says. */
  async setDefaultPeriods(
    endpointName: string,
    periods: { pmin?: number; pmax?: number },
    shortServerId?: number,
  ): Promise<OperationResult[]> {
    const account = await this.serverAccountPath(endpointName, shortServerId);
    const results: OperationResult[] = [];
    if (periods.pmin !== undefined) results.push(await this.device.write(endpointName, `${account}/2`, periods.pmin));
    if (periods.pmax !== undefined) results.push(await this.device.write(endpointName, `${account}/3`, periods.pmax));
    if (results.length === 0)
      throw new Lwm2mRequestError('give pmin and/or pmax', 'bad-request', endpointName, account);
    return results;
  }

  /** Mute Send (/1/x/23, LwM2M 1.1): a device sends nothing with Send while it is true. */
  async setMuteSend(endpointName: string, muted: boolean, shortServerId?: number): Promise<OperationResult> {
    const account = await this.serverAccountPath(endpointName, shortServerId);
    return this.device.write(endpointName, `${account}/23`, muted);
  }
}
