/**
 * Firmware Update (object 5) vocabulary: the State (/5/0/3) and Update Result (/5/0/5) codes of LwM2M Core
 * Appendix E.6, with the wording used in job results and errors, and the cause names a failed job reports.
 */

/** /5/0/3 State. */
export const FirmwareUpdateState = { IDLE: 0, DOWNLOADING: 1, DOWNLOADED: 2, UPDATING: 3 } as const;

export const STATE_TEXT: Record<number, string> = {
  0: 'Idle',
  1: 'Downloading',
  2: 'Downloaded',
  3: 'Updating',
};

/** /5/0/5 Update Result (10 and 11 are LwM2M 1.1+). */
export const UPDATE_RESULT_TEXT: Record<number, string> = {
  0: 'initial value',
  1: 'firmware updated successfully',
  2: 'not enough flash memory for the new firmware package',
  3: 'out of RAM during the download',
  4: 'connection lost during the download',
  5: 'integrity check failure for the new firmware package',
  6: 'unsupported package type',
  7: 'invalid URI',
  8: 'firmware update failed',
  9: 'unsupported protocol',
  10: 'firmware update cancelled',
  11: 'firmware update deferred',
};

/** Why a job failed: one name per Update Result, plus what the server itself saw. */
export type FirmwareFailureCause =
  | 'not-enough-flash'
  | 'out-of-ram'
  | 'connection-lost'
  | 'integrity-failure'
  | 'unsupported-package'
  | 'invalid-uri'
  | 'update-failed'
  | 'unsupported-protocol'
  | 'cancelled'
  | 'deferred'
  /** The device reported an Update Result we do not know, or none after its update. */
  | 'unknown-result'
  /** Downloading (push write or pull) did not reach Downloaded in time. */
  | 'download-timeout'
  /** After Update the device did not come back (register again) with a result in time. */
  | 'update-timeout'
  /** The device reported success, but its package name/version or /3/0/3 is not what was expected. */
  | 'verification-failed'
  /** The device cannot take the package the way it was offered (delivery method, protocol, reset refused). */
  | 'unsupported-delivery'
  /** A request to the device failed (not registered, an error code, no answer). */
  | 'request-failed'
  /** The job was running when the server stopped (found in its store after a restart; see resumeJobs). */
  | 'interrupted';

const CAUSE_BY_RESULT: Record<number, FirmwareFailureCause> = {
  2: 'not-enough-flash',
  3: 'out-of-ram',
  4: 'connection-lost',
  5: 'integrity-failure',
  6: 'unsupported-package',
  7: 'invalid-uri',
  8: 'update-failed',
  9: 'unsupported-protocol',
  10: 'cancelled',
  11: 'deferred',
};

export function causeOfResult(result: number): FirmwareFailureCause {
  return CAUSE_BY_RESULT[result] ?? 'unknown-result';
}

export function resultText(result: number | undefined): string {
  if (result === undefined) return 'no update result';
  return UPDATE_RESULT_TEXT[result] ?? `unknown update result ${result}`;
}

/** /5/0/8 Firmware Update Protocol Support values and the URI scheme of each. */
export const PROTOCOL_SCHEMES: Record<number, string> = {
  0: 'coap:',
  1: 'coaps:',
  2: 'http:',
  3: 'https:',
  4: 'coap+tcp:',
  5: 'coaps+tcp:',
};
