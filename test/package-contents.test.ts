/** What `npm pack` puts in the package: what Node-RED and users run, and nothing of the tests or source maps. */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(__dirname, '..', '..');

interface PackedFile {
  path: string;
  size: number;
}

/** `npm pack --dry-run` on the built project (pretest built it; --ignore-scripts: no second build). */
function packedFiles(): PackedFile[] {
  const npmCli = process.env.npm_execpath;
  const args = ['pack', '--dry-run', '--json', '--ignore-scripts', '--loglevel=error'];
  // npm on the Node running the tests when npm started them (npm_execpath is its CLI script), else from PATH.
  const output =
    npmCli && npmCli.endsWith('.js')
      ? execFileSync(process.execPath, [npmCli, ...args], { cwd: root, encoding: 'utf8' })
      : execFileSync('npm', args, { cwd: root, encoding: 'utf8' });
  return (JSON.parse(output) as { files: PackedFile[] }[])[0].files;
}

describe('the npm package', function () {
  this.timeout(60000);
  let files: string[];
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
    main: string;
    bin: Record<string, string>;
    'node-red': { nodes: Record<string, string>; plugins?: Record<string, string> };
  };

  before(() => {
    files = packedFiles().map((file) => file.path);
  });

  it('holds the compiled lib and nodes, their editor files, the examples, the simulator and the docs', () => {
    const declared = [...Object.values(pkg['node-red'].nodes), ...Object.values(pkg['node-red'].plugins ?? {})];
    const needed = [
      ...declared.flatMap((file) => [file, file.replace(/\.js$/, '.html')]),
      pkg.main,
      pkg.main.replace(/\.js$/, '.d.ts'),
      ...Object.values(pkg.bin),
      ...fs.readdirSync(path.join(root, 'examples')).map((file) => `examples/${file}`),
      ...fs.readdirSync(path.join(root, 'icons')).map((file) => `dist/nodes/icons/${file}`),
      'README.md',
      'LICENSE',
      'CHANGELOG.md',
    ];
    const resources = path.join(root, 'resources');
    if (fs.existsSync(resources)) {
      for (const entry of fs.readdirSync(resources, { recursive: true, withFileTypes: true })) {
        if (entry.isFile())
          needed.push(path.relative(root, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'));
      }
    }
    assert.deepEqual(
      needed.filter((file) => !files.includes(file.replace(/^\.\//, ''))),
      [],
    );
  });

  it('holds no tests, benchmarks, TypeScript sources, source maps or build state', () => {
    const shipped =
      /^(dist\/(lib|nodes)\/|resources\/|bin\/|examples\/|(README|CHANGELOG)\.md$|LICENSE$|package\.json$)/;
    assert.deepEqual(
      files.filter(
        (file) =>
          !shipped.test(file) ||
          file.endsWith('.map') ||
          /(^|\/)[^/]+(?<!\.d)\.ts$/.test(file) ||
          file.includes('tsbuildinfo'),
      ),
      [],
    );
    assert.deepEqual(
      files.filter((file) => file.startsWith('dist/nodes/') && file.endsWith('.d.ts')),
      [],
      'declarations of the nodes (only lib/ is an API)',
    );
  });
});
