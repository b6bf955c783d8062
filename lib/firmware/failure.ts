/**
 * A failure inside a firmware job, before the job turns it into its FirmwareJobError: why (the cause) and in
 * which phase. Internal to lib/firmware (not exported from the package).
 */
import { Lwm2mError } from '../errors';
import type { FirmwareFailureCause } from './results';
import type { FirmwareJobState } from './job-types';

export class Failure extends Lwm2mError {
  constructor(
    message: string,
    override readonly cause: FirmwareFailureCause,
    readonly phase?: FirmwareJobState,
  ) {
    super(message, cause);
  }
}
