/**
 * lib/firmware's public face: firmware updates over the air (LwM2M object 5), one device (FirmwareJob) or
 * many (FirmwareCampaign), their records and resumption after a restart, and the package server for pulls.
 */
export * from './results';
export * from './package-server';
export * from './job-types';
export * from './device';
export * from './job';
export * from './campaign';
export * from './store';
export * from './resume';
