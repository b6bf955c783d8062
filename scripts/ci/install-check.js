#!/usr/bin/env node
// CI: installs the package the ways a Node-RED user does and checks that Node-RED loads all of it.
//
//   node scripts/ci/install-check.js --node-red 4 [--keep]
//
// 1. Clones the project's committed HEAD (no dist/: it is git-ignored), installs its dependencies without running
//    any script, and packs it (`npm pack` must build through `prepare`, as `npm publish` does); checks that the
//    tarball holds what Node-RED loads and nothing else, and prints its file count and sizes.
// 2. Installs `node-red@<major>` into a temporary folder.
// 3. Installs the package into two fresh Node-RED user directories, from the tarball and from the clone's git
//    URL (git+file://: npm clones it, installs its devDependencies and runs `prepare`, as for a GitHub URL).
// 4. Starts Node-RED on each (on the Node running this script) and asks its admin API (GET /nodes, /plugins
//    with Accept: application/json) whether every node set and plugin named in package.json is enabled and
//    loaded, with no error. Stops Node-RED by its PID and removes the temporary folders (unless --keep).
// npm runs on the same Node as this script (its folder goes first on PATH).
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { setTimeout: sleep } = require('node:timers/promises');
const { setTimeout, clearTimeout } = require('node:timers');
const { fetch } = globalThis;

const root = path.resolve(__dirname, '..', '..');
const argv = process.argv.slice(2);
const nodeRedMajor = argv[argv.indexOf('--node-red') + 1];
if (!argv.includes('--node-red') || !/^\d+$/.test(nodeRedMajor ?? '')) {
  console.error('usage: node scripts/ci/install-check.js --node-red <major> [--keep]');
  process.exit(2);
}
const keep = argv.includes('--keep');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const nodeSets = Object.keys(pkg['node-red'].nodes);
const plugins = Object.keys(pkg['node-red'].plugins ?? {});
const env = { ...process.env, PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH}` };
const work = fs.mkdtempSync(path.join(os.tmpdir(), `lwm2m-install-check-nr${nodeRedMajor}-`));
const log = (line) => console.log(`install-check (Node-RED ${nodeRedMajor}, Node ${process.version}): ${line}`);

/** Runs a command to its end; throws with its output when it fails. */
function run(command, args, cwd) {
  const started = Date.now();
  const result = spawnSync(command, args, { cwd, env, encoding: 'utf8', timeout: 15 * 60_000 });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (result.status !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} failed (${result.error ?? result.status}) in ${cwd}:\n` +
        `${result.stdout}\n${result.stderr}`,
    );
  }
  log(`${command} ${args.join(' ')} (${seconds} s)`);
  return result.stdout;
}

const npm = (args, cwd) => run('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], cwd);

/** Clones HEAD, installs and packs: returns the tarball's path after checking its content. */
function packCleanClone() {
  const clone = path.join(work, 'clone');
  run('git', ['clone', '--quiet', root, clone], work);
  // Only TypeScript is needed, for `prepare` in `npm pack`: a plain `npm install` would run `prepare` too, a
  // whole build that the pack's own build must not find.
  npm(['install', '--ignore-scripts'], clone);
  const [packed] = JSON.parse(npm(['pack', '--json', '--pack-destination', work], clone));
  const files = packed.files.map((file) => file.path);
  const shipped = /^(dist\/(lib|nodes)\/|resources\/|bin\/|examples\/|(README|CHANGELOG)\.md$|LICENSE$|package\.json$)/;
  const unexpected = files.filter((file) => !shipped.test(file) || file.endsWith('.map'));
  if (unexpected.length) throw new Error(`the tarball holds what users do not run: ${unexpected.join(', ')}`);
  const declared = [...Object.values(pkg['node-red'].nodes), ...Object.values(pkg['node-red'].plugins ?? {})];
  const needed = declared
    .flatMap((file) => [file, file.replace(/\.js$/, '.html')])
    .concat(pkg.main, pkg.bin['lwm2m-sim']);
  const missing = needed.filter((file) => !files.includes(file.replace(/^\.\//, '')));
  if (missing.length) throw new Error(`the tarball lacks ${missing.join(', ')}`);
  log(
    `${packed.filename}: ${packed.entryCount} files, ${(packed.size / 1e6).toFixed(2)} MB packed, ` +
      `${(packed.unpackedSize / 1e6).toFixed(2)} MB unpacked`,
  );
  return { tarball: path.join(work, packed.filename), clone };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** A fresh Node-RED user directory with the package installed from `spec` (a tarball path or a git URL). */
function userDirWith(name, spec) {
  const userDir = path.join(work, name);
  fs.mkdirSync(userDir);
  fs.writeFileSync(
    path.join(userDir, 'package.json'),
    JSON.stringify({ name: 'node-red-project', version: '0.0.1', private: true }, null, 2),
  );
  // The flags of Node-RED's own palette manager (@node-red/registry's installer): no devDependencies.
  npm(['install', '--no-update-notifier', '--save', '--save-prefix=~', '--omit=dev', '--engine-strict', spec], userDir);
  return userDir;
}

/** Starts Node-RED on `userDir`, checks what it loaded of the package, stops it. */
async function checkNodeRed(redJs, userDir, how) {
  const port = await freePort();
  const settings = path.join(userDir, 'settings.js');
  fs.writeFileSync(
    settings,
    `module.exports = ${JSON.stringify({
      uiHost: '127.0.0.1',
      uiPort: port,
      flowFile: 'flows.json',
      credentialSecret: false,
      logging: { console: { level: 'info', metrics: false, audit: false } },
      editorTheme: { tours: false },
    })};\n`,
  );
  const child = spawn(process.execPath, [redJs, '--userDir', userDir, '--settings', settings], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const base = `http://127.0.0.1:${port}`;
  const getJson = async (urlPath) => {
    const response = await fetch(base + urlPath, { headers: { Accept: 'application/json' } });
    if (response.status !== 200) throw new Error(`GET ${urlPath}: ${response.status} ${await response.text()}`);
    return response.json();
  };
  const getText = async (urlPath) => {
    const response = await fetch(base + urlPath, { headers: { Accept: 'text/html' } });
    if (response.status !== 200) throw new Error(`GET ${urlPath}: ${response.status} ${await response.text()}`);
    return response.text();
  };
  try {
    // Node-RED listens once it has loaded the nodes: the first answer is the whole picture.
    const until = Date.now() + 90_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`Node-RED exited (${child.exitCode})`);
      if (Date.now() > until) throw new Error('Node-RED did not answer within 90 s');
      const answered = await fetch(`${base}/settings`, { headers: { Accept: 'application/json' } }).catch(() => null);
      if (answered?.status === 200) break;
      await sleep(200);
    }
    // The admin API drops the registry's `loaded` flag; a set that Node-RED tried to load and could not has `err`
    // (a failed require, a throwing or rejecting init), one it loaded has none. The editor side: the set's
    // template is among the node configs the editor fetches (text/html), which Node-RED serves only for sets
    // enabled and without error; the plugin's likewise among the plugin configs.
    const problems = [];
    const sets = await getJson('/nodes');
    const editorConfigs = await getText('/nodes');
    for (const name of nodeSets) {
      const id = `${pkg.name}/${name}`;
      const info = sets.find((set) => set.id === id);
      if (!info) problems.push(`node set ${name}: not listed`);
      else if (info.err || info.enabled !== true || !info.types?.length || info.version !== pkg.version) {
        problems.push(`node set ${name}: ${JSON.stringify(info)}`);
      } else if (!editorConfigs.includes(`[red-module:${id}]`)) problems.push(`node set ${name}: no editor template`);
    }
    const pluginList = await getJson('/plugins');
    const pluginConfigs = await getText('/plugins');
    for (const name of plugins) {
      const id = `${pkg.name}/${name}`;
      const info = pluginList.find((plugin) => plugin.id === id);
      if (!info) problems.push(`plugin ${name}: not listed`);
      else if (info.err || info.enabled !== true || !info.runtime || !info.editor) {
        problems.push(`plugin ${name}: ${JSON.stringify(info)}`);
      } else if (!pluginConfigs.includes(`[red-plugin:${id}]`)) problems.push(`plugin ${name}: no editor template`);
    }
    const complaints = output.split('\n').filter((line) => /\[(error|warn)\]/.test(line) && line.includes(pkg.name));
    if (/Failed to register/.test(output)) complaints.push('Node-RED: "Failed to register ... node types"');
    problems.push(...complaints);
    if (problems.length) throw new Error(`installed from ${how}:\n  ${problems.join('\n  ')}`);
    log(`installed from ${how}: ${nodeSets.length} node sets and ${plugins.length} plugin(s) loaded, no error`);
  } catch (err) {
    err.message += `\n--- Node-RED's output ---\n${output}`;
    throw err;
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    }
  }
}

(async () => {
  const started = Date.now();
  try {
    const { tarball, clone } = packCleanClone();
    const nodeRedDir = path.join(work, 'node-red');
    fs.mkdirSync(nodeRedDir);
    npm(['install', `node-red@${nodeRedMajor}`], nodeRedDir);
    const nodeRedPkg = path.join(nodeRedDir, 'node_modules', 'node-red', 'package.json');
    log(`Node-RED ${JSON.parse(fs.readFileSync(nodeRedPkg, 'utf8')).version}`);
    const redJs = path.join(nodeRedDir, 'node_modules', 'node-red', 'red.js');
    await checkNodeRed(redJs, userDirWith('user-tarball', tarball), `the tarball ${path.basename(tarball)}`);
    await checkNodeRed(redJs, userDirWith('user-git', `git+file://${clone}`), `git+file://${clone}`);
    log(`passed (${((Date.now() - started) / 1000).toFixed(0)} s)`);
  } finally {
    if (keep) log(`kept ${work}`);
    else fs.rmSync(work, { recursive: true, force: true });
  }
})().catch((err) => {
  console.error(`install-check (Node-RED ${nodeRedMajor}) FAILED: ${err.stack ?? err}`);
  process.exit(1);
});
