/** Built-in core objects: Security (0), Server (1), Device (3), Connectivity Monitoring (4), Location (6). */
import { EMPTY_BUFFER } from '../object-tree';
import type { ObjectContext, ObjectImplementation } from './types';

export interface DeviceInfo {
  manufacturer: string;
  modelNumber: string;
  serialNumber: string;
  firmwareVersion: string;
  hardwareVersion: string;
  softwareVersion: string;
  deviceType: string;
}

export interface ServerObjectOptions {
  shortServerId: number;
  /** Default pmin / pmax (/1/x/2, /1/x/3), seconds. */
  defaultPmin?: number;
  defaultPmax?: number;
}

export function securityObject(ctx: ObjectContext, shortServerId: number): ObjectImplementation {
  return {
    creatable: false,
    instance: () => ({
      0: ctx.serverUri,
      1: false,
      2: 3, // NoSec
      3: EMPTY_BUFFER,
      4: EMPTY_BUFFER,
      5: EMPTY_BUFFER,
      10: shortServerId,
      11: 0,
      12: 0,
    }),
  };
}

export function serverObject(ctx: ObjectContext, options: ServerObjectOptions): ObjectImplementation {
  return {
    creatable: false,
    instance: (instanceId) => {
      const spec: Record<number, unknown> = {
        0: options.shortServerId,
        1: { value: ctx.lifetime, write: () => ctx.triggerUpdate() },
        4: { execute: () => ctx.disable(Number(ctx.get(`/1/${instanceId}/5`) ?? 86400)) },
        5: 86400,
        6: false,
        7: { value: ctx.binding, write: () => ctx.triggerUpdate() },
        8: { execute: () => ctx.triggerUpdate() },
      };
      if (options.defaultPmin !== undefined) spec[2] = options.defaultPmin;
      if (options.defaultPmax !== undefined) spec[3] = options.defaultPmax;
      if (ctx.lwm2mVersion !== '1.0') spec[23] = false; // Mute Send
      // Bootstrap-Request Trigger: Server object 1.1+, and only a device that has a bootstrap server.
      const triggerBootstrap = ctx.triggerBootstrap;
      if (ctx.lwm2mVersion !== '1.0' && triggerBootstrap) spec[9] = { execute: () => triggerBootstrap() };
      return spec;
    },
  };
}

export function deviceObject(ctx: ObjectContext, info: DeviceInfo, supportedBinding: string): ObjectImplementation {
  let clockOffsetMs = 0;
  let battery = 100;
  return {
    creatable: false,
    instance: () => ({
      0: info.manufacturer,
      1: info.modelNumber,
      2: info.serialNumber,
      3: info.firmwareVersion,
      4: { execute: () => ctx.reboot() },
      5: { execute: () => ctx.reboot() },
      6: [1, 5],
      7: [3800, 5000],
      8: [125, 900],
      9: battery,
      10: 15,
      11: [0],
      12: { execute: () => ctx.set('/3/0/11', [0]) },
      13: {
        read: () => new Date(Date.now() + clockOffsetMs),
        write: (value: unknown) => {
          clockOffsetMs = (value as Date).getTime() - Date.now();
          return false;
        },
      },
      14: '+00:00',
      15: 'UTC',
      16: supportedBinding,
      17: info.deviceType,
      18: info.hardwareVersion,
      19: info.softwareVersion,
      20: 0,
      21: 64,
    }),
    simulate: () => {
      battery = battery <= 5 ? 100 : battery - (ctx.random() < 0.3 ? 1 : 0);
      ctx.set('/3/0/9', battery);
      ctx.set('/3/0/10', 10 + Math.floor(ctx.random() * 10));
      // the clock moved on: observers of Current Time hear of it (reads compute it anyway)
      ctx.set('/3/0/13', new Date(Date.now() + clockOffsetMs));
    },
  };
}

export function connectivityObject(ctx: ObjectContext): ObjectImplementation {
  let rssi = -70 - Math.floor(ctx.random() * 30);
  return {
    creatable: false,
    instance: () => ({
      0: 7, // NB-IoT
      1: [7, 21],
      2: rssi,
      3: 60,
      4: { read: () => [ctx.localAddress()?.address ?? '0.0.0.0'] },
      5: ['10.0.0.1'],
      6: 5,
      7: ['iot.example'],
      8: 1 + Math.floor(ctx.random() * 65000),
      9: 1,
      10: 1,
    }),
    simulate: () => {
      rssi = Math.max(-120, Math.min(-50, rssi + Math.round((ctx.random() - 0.5) * 6)));
      ctx.set('/4/0/2', rssi);
      ctx.set('/4/0/3', Math.max(0, Math.min(100, 60 + Math.round((rssi + 85) * 1.5))));
    },
  };
}

export function locationObject(ctx: ObjectContext): ObjectImplementation {
  let latitude = 48.1 + (ctx.random() - 0.5) * 0.2;
  let longitude = 11.5 + (ctx.random() - 0.5) * 0.2;
  const round = (value: number) => Math.round(value * 1e6) / 1e6;
  return {
    creatable: false,
    instance: () => ({
      0: round(latitude),
      1: round(longitude),
      2: 520,
      3: 10,
      5: new Date(),
      6: 0,
    }),
    simulate: () => {
      const dLat = (ctx.random() - 0.5) * 0.0005;
      const dLon = (ctx.random() - 0.5) * 0.0005;
      latitude += dLat;
      longitude += dLon;
      ctx.set('/6/0/0', round(latitude));
      ctx.set('/6/0/1', round(longitude));
      ctx.set('/6/0/6', Math.round(Math.hypot(dLat, dLon) * 111_000 * 100) / 100);
      ctx.set('/6/0/5', new Date());
    },
  };
}
