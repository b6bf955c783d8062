/**
 * Any object the model defines, without special behaviour: every resource exists with a neutral value
 * (one instance for a multiple resource), executable resources only emit 'execute' on the client.
 * Numeric readable resources wander a little in a simulation so observations have something to report.
 */
import type { ObjectDefinition } from '../../model/types';
import { defaultValue, type InstanceSpec } from '../object-tree';
import type { ObjectContext, ObjectImplementation } from './types';

export function genericObject(ctx: ObjectContext, definition: ObjectDefinition): ObjectImplementation {
  const resources = Object.values(definition.resources).sort((a, b) => a.id - b.id);
  const simulated = resources.filter(
    (r) => !r.multiple && r.operations === 'R' && (r.type === 'float' || r.type === 'integer'),
  );
  return {
    instance: () => {
      const spec: InstanceSpec = {};
      for (const resource of resources) {
        if (resource.operations === 'E') {
          spec[resource.id] = { execute: () => undefined };
          continue;
        }
        const value = defaultValue(resource.type);
        if (value === undefined) continue;
        spec[resource.id] = resource.multiple ? [value] : value;
      }
      return spec;
    },
    simulate: (instanceId) => {
      for (const resource of simulated) {
        const path = `/${definition.id}/${instanceId}/${resource.id}`;
        const current = Number(ctx.get(path) ?? 0);
        const delta = (ctx.random() - 0.5) * 2;
        const next = resource.type === 'integer' ? Math.max(0, current + Math.round(delta)) : current + delta;
        ctx.set(path, resource.type === 'float' ? Math.round(next * 100) / 100 : next);
      }
    },
  };
}
