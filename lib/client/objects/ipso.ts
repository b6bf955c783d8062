/**
 * Built-in IPSO smart objects with simulated behaviour: sensors as installed somewhere (application type,
 * units, range) whose value changes a little per step around a typical reading (tracking min/max measured),
 * switches that toggle, actuators that follow what the server writes.
 */
import type { ObjectDefinition } from '../../model/types';
import type { InstanceSpec } from '../object-tree';
import { genericObject } from './generic';
import type { ObjectContext, ObjectImplementation } from './types';

interface SensorProfile {
  /** Application Type (5750): what the sensor measures where it is installed. */
  applicationType: string;
  /** Sensor Units (5701), in SenML notation. */
  units: string;
  /** The measuring range (5603/5604): the value never leaves it. */
  min: number;
  max: number;
  /** Where the value settles: each change drifts back towards it a little, so it never wanders off. */
  typical: number;
  /** The largest random change per simulated step. */
  step: number;
  decimals: number;
  /** Sensor Type (5751) of a Generic Sensor. */
  sensorType?: string;
}

/**
 * Each sensor as one typically installed: a measuring range of a common part, a value near what it reads
 * indoors or in a field, changing by a little per step (a step is `--change-every`, 30 s by default).
 */
const SENSORS: Record<number, SensorProfile> = {
  3300: {
    applicationType: 'CO2 concentration',
    sensorType: 'NDIR CO2',
    units: 'ppm',
    min: 0,
    max: 5000,
    typical: 650,
    step: 15,
    decimals: 0,
  },
  3301: { applicationType: 'Room light', units: 'lx', min: 0, max: 65535, typical: 350, step: 15, decimals: 1 },
  3303: { applicationType: 'Room temperature', units: 'Cel', min: -40, max: 85, typical: 21, step: 0.2, decimals: 2 },
  3304: { applicationType: 'Air humidity', units: '%RH', min: 0, max: 100, typical: 45, step: 0.8, decimals: 1 },
  3315: {
    applicationType: 'Barometric pressure',
    units: 'hPa',
    min: 300,
    max: 1100,
    typical: 1013,
    step: 0.3,
    decimals: 1,
  },
  3316: { applicationType: 'Battery voltage', units: 'V', min: 0, max: 5, typical: 3.7, step: 0.01, decimals: 3 },
  3317: { applicationType: 'Load current', units: 'A', min: 0, max: 10, typical: 1.2, step: 0.05, decimals: 3 },
  3320: { applicationType: 'Tank level', units: '%', min: 0, max: 100, typical: 60, step: 0.5, decimals: 1 },
  3323: { applicationType: 'Water pressure', units: 'kPa', min: 0, max: 1000, typical: 350, step: 3, decimals: 1 },
  3328: { applicationType: 'Power consumption', units: 'W', min: 0, max: 5000, typical: 250, step: 10, decimals: 1 },
};

/**
 * A Humidity sensor on a device with an irrigation valve (3425) is a soil moisture probe (volumetric water
 * content): the soil dries a little each step and gets wetter while the valve is open.
 */
const SOIL_MOISTURE: SensorProfile = {
  applicationType: 'Soil moisture',
  units: '%',
  min: 0,
  max: 100,
  typical: 38,
  step: 0.15,
  decimals: 1,
};

/** Share of its moisture the soil loses per step. */
const SOIL_DRYING = 0.01;
/** Moisture gained per step with the valve fully open, on dry soil (less as it nears saturation). */
const SOIL_WETTING = 3;
/** Moisture (%) at which the soil takes no more water. */
const SOIL_SATURATION = 60;

/** How far a value drifts back towards its typical value per step. */
const SETTLE = 0.05;

/** Application Type (5750) of the objects that are not sensors. */
const APPLICATION_TYPES: Record<number, string> = {
  3306: 'Pump',
  3311: 'Ceiling light',
  3312: 'Socket',
  3313: 'Vibration monitor',
  3336: 'Asset tracker',
  3342: 'Door contact',
  3347: 'Push button',
};

/** Object ids with a simulated implementation here. */
export const IPSO_IDS: readonly number[] = [
  ...Object.keys(SENSORS).map(Number),
  3306,
  3311,
  3312,
  3313,
  3336,
  3342,
  3347,
  3425,
];

/** The profile of a simulated sensor object on this device (undefined: not a sensor). */
export function sensorProfile(objectId: number, hasObject: (id: number) => boolean): SensorProfile | undefined {
  if (objectId === 3304 && hasObject(3425)) return SOIL_MOISTURE;
  return SENSORS[objectId];
}

function round(value: number, decimals: number): number {
  const f = 10 ** decimals;
  return Math.round(value * f) / f;
}

function sensor(ctx: ObjectContext, objectId: number, profile: SensorProfile): ObjectImplementation {
  const state = new Map<number, { value: number; min: number; max: number }>();
  const path = (id: number, resource: number) => `/${objectId}/${id}/${resource}`;
  const soil = profile === SOIL_MOISTURE;
  /** The next value: a small random step, drifting back to typical (soil: drying, watered by the valve). */
  const next = (value: number, id: number): number => {
    const noise = (ctx.random() - 0.5) * 2 * profile.step;
    if (!soil) return value + noise + (profile.typical - value) * SETTLE;
    const opening = Number(ctx.get(`/3425/${id}/2`) ?? ctx.get('/3425/0/2') ?? 0) / 100;
    const wetting = opening * SOIL_WETTING * Math.max(0, 1 - value / SOIL_SATURATION);
    return value + noise + wetting - value * SOIL_DRYING;
  };
  return {
    instance: (id) => {
      const start = round(profile.typical + (ctx.random() - 0.5) * profile.step * 4, profile.decimals);
      state.set(id, { value: start, min: start, max: start });
      const spec: InstanceSpec = {
        5700: start,
        5701: profile.units,
        5601: start,
        5602: start,
        5603: profile.min,
        5604: profile.max,
        5605: {
          execute: () => {
            const s = state.get(id);
            if (s === undefined) return;
            s.min = s.max = s.value;
            ctx.set(path(id, 5601), s.value);
            ctx.set(path(id, 5602), s.value);
          },
        },
        5750: profile.applicationType,
      };
      if (profile.sensorType !== undefined) spec[5751] = profile.sensorType;
      return spec;
    },
    simulate: (id) => {
      const s = state.get(id);
      if (s === undefined) return;
      s.value = round(Math.min(profile.max, Math.max(profile.min, next(s.value, id))), profile.decimals);
      ctx.set(path(id, 5700), s.value);
      if (s.value < s.min) ctx.set(path(id, 5601), (s.min = s.value));
      if (s.value > s.max) ctx.set(path(id, 5602), (s.max = s.value));
    },
  };
}

function onOffSwitch(ctx: ObjectContext, objectId: number, pushButton: boolean): ObjectImplementation {
  const counters = new Map<number, { on: boolean; count: number }>();
  return {
    instance: (id) => {
      counters.set(id, { on: false, count: 0 });
      const spec: InstanceSpec = { 5500: false, 5501: 0, 5750: APPLICATION_TYPES[objectId] };
      if (!pushButton) Object.assign(spec, { 5852: 0, 5854: 0 });
      return spec;
    },
    simulate: (id) => {
      const s = counters.get(id);
      if (s === undefined) return;
      const flip = pushButton ? s.on || ctx.random() < 0.2 : ctx.random() < 0.3;
      if (!flip) return;
      s.on = !s.on;
      if (s.on) s.count++;
      ctx.set(`/${objectId}/${id}/5500`, s.on);
      ctx.set(`/${objectId}/${id}/5501`, s.count);
    },
  };
}

/** Light control (3311), power control (3312), actuation (3306): follow the server's writes. */
function actuator(ctx: ObjectContext, objectId: number): ObjectImplementation {
  const base = (id: number) => `/${objectId}/${id}`;
  return {
    instance: () => {
      const spec: InstanceSpec = { 5850: false, 5851: 100, 5852: 0, 5750: APPLICATION_TYPES[objectId] };
      if (objectId === 3311 || objectId === 3312) Object.assign(spec, { 5805: 0, 5820: 0.92 });
      if (objectId === 3311) Object.assign(spec, { 5706: 'white', 5701: 'Wh' });
      if (objectId === 3306) Object.assign(spec, { 5853: '' });
      return spec;
    },
    simulate: (id) => {
      if (ctx.get(`${base(id)}/5850`) !== true) return;
      ctx.set(`${base(id)}/5852`, Number(ctx.get(`${base(id)}/5852`) ?? 0) + 1);
      if (objectId === 3311 || objectId === 3312) {
        const dimmer = Number(ctx.get(`${base(id)}/5851`) ?? 100);
        const energy = Number(ctx.get(`${base(id)}/5805`) ?? 0) + (dimmer / 100) * 0.05;
        ctx.set(`${base(id)}/5805`, Math.round(energy * 1000) / 1000);
      }
    },
  };
}

function accelerometer(ctx: ObjectContext): ObjectImplementation {
  const axis = () => Math.round((ctx.random() - 0.5) * 40) / 100;
  return {
    instance: () => ({
      5702: axis(),
      5703: axis(),
      5704: 9.81,
      5701: 'm/s2',
      5603: -20,
      5604: 20,
      5750: APPLICATION_TYPES[3313],
    }),
    simulate: (id) => {
      ctx.set(`/3313/${id}/5702`, axis());
      ctx.set(`/3313/${id}/5703`, axis());
      ctx.set(`/3313/${id}/5704`, Math.round((9.81 + (ctx.random() - 0.5) * 0.2) * 100) / 100);
    },
  };
}

function gpsLocation(ctx: ObjectContext): ObjectImplementation {
  const positions = new Map<number, [number, number]>();
  return {
    instance: (id) => {
      const position: [number, number] = [52.52 + (ctx.random() - 0.5) * 0.1, 13.4 + (ctx.random() - 0.5) * 0.1];
      positions.set(id, position);
      return { 6051: round(position[0], 6), 6052: round(position[1], 6), 6053: 5, 5750: APPLICATION_TYPES[3336] };
    },
    simulate: (id) => {
      const p = positions.get(id);
      if (p === undefined) return;
      p[0] += (ctx.random() - 0.5) * 0.0005;
      p[1] += (ctx.random() - 0.5) * 0.0005;
      ctx.set(`/3336/${id}/6051`, round(p[0], 6));
      ctx.set(`/3336/${id}/6052`, round(p[1], 6));
    },
  };
}

/** Irrigation valve (3425): writing Command (3) moves Status (2) and Command in action (4). */
function irrigationValve(ctx: ObjectContext): ObjectImplementation {
  return {
    instance: (id) => ({
      1: 0,
      2: 0,
      3: {
        value: 0,
        write: (value: unknown) => {
          ctx.set(`/3425/${id}/4`, 1);
          ctx.set(`/3425/${id}/2`, value);
          ctx.set(`/3425/${id}/4`, 0);
        },
      },
      4: 0,
      6: false,
    }),
  };
}

/** The simulated implementation of an IPSO object, or a generic one built from its definition. */
export function ipsoObject(ctx: ObjectContext, definition: ObjectDefinition): ObjectImplementation {
  const id = definition.id;
  const profile = sensorProfile(id, ctx.hasObject);
  if (profile !== undefined) return sensor(ctx, id, profile);
  switch (id) {
    case 3342:
      return onOffSwitch(ctx, id, false);
    case 3347:
      return onOffSwitch(ctx, id, true);
    case 3306:
    case 3311:
    case 3312:
      return actuator(ctx, id);
    case 3313:
      return accelerometer(ctx);
    case 3336:
      return gpsLocation(ctx);
    case 3425:
      return irrigationValve(ctx);
    default:
      return genericObject(ctx, definition);
  }
}
