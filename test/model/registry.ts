import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The project root: the nearest folder above this file holding package.json. Tests run compiled from
 * build/test/model/, so a fixed number of `..` would depend on the build layout.
 */
export function projectRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${__dirname}`);
    dir = parent;
  }
}

/**
 * The shared checkout of the OMA LwM2M registry, next to the project (or where LWM2M_REGISTRY_DIR points);
 * undefined when it is absent, and the tests that need it skip.
 */
export function registryDir(): string | undefined {
  const dir = process.env.LWM2M_REGISTRY_DIR ?? path.resolve(projectRoot(), '../shared/lwm2m-registry');
  return fs.existsSync(dir) ? dir : undefined;
}
