/** A real Node-RED process (run-node-red.ts) for the editor tests: admin auth, tokens, clean shutdown. */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The project root (this file runs from build/test/editor). */
export const projectRoot = path.resolve(__dirname, '..', '..', '..');

export interface NodeRedProcess {
  url: string;
  child: ChildProcess;
  userDir: string;
  /** Everything the process printed (for failure messages). */
  output(): string;
  /** An access token for a user of run-node-red.ts (password = name), with that user's own scope. */
  token(username: string): Promise<string>;
  /** An admin API call with a token (or none). */
  call(method: string, urlPath: string, token?: string, body?: unknown): Promise<{ status: number; body: unknown }>;
  stop(): Promise<void>;
}

/** Settings for run-node-red.ts: `adminAuth: false` turns adminAuth off; the rest are Node-RED settings (JSON). */
export interface NodeRedSettings {
  adminAuth?: boolean;
  httpAdminCors?: { origin?: string | string[] | boolean; methods?: string };
  /** The runtime's language (status texts, warnings, log), as settings.js `lang` sets it. */
  lang?: string;
}

export async function startNodeRed(
  flows: unknown[],
  timeoutMs = 30000,
  settings: NodeRedSettings = {},
): Promise<NodeRedProcess> {
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lwm2m-editor-'));
  fs.mkdirSync(path.join(userDir, 'node_modules'), { recursive: true });
  // Installed as a module is installed: Node-RED reads our package.json's "node-red" section (nodes and plugins).
  fs.symlinkSync(projectRoot, path.join(userDir, 'node_modules', 'node-red-contrib-lwm2m-server'), 'dir');
  fs.writeFileSync(path.join(userDir, 'flows.json'), JSON.stringify(flows));
  const child = spawn(process.execPath, [path.join(__dirname, 'run-node-red.js'), userDir], {
    cwd: projectRoot,
    env: { ...process.env, LWM2M_TEST_SETTINGS: JSON.stringify(settings) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
    }
    fs.rmSync(userDir, { recursive: true, force: true });
  };

  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`Node-RED did not start within ${timeoutMs} ms:\n${output}`)),
      timeoutMs,
    );
    const onData = () => {
      const match = /READY (\d+)/.exec(output);
      if (!match) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      resolve(Number(match[1]));
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`Node-RED exited (${code}) before it was ready:\n${output}`));
    });
  }).catch(async (err) => {
    await stop();
    throw err;
  });
  const url = `http://127.0.0.1:${port}`;

  const call = async (method: string, urlPath: string, token?: string, body?: unknown) => {
    const response = await fetch(url + urlPath, {
      method,
      headers: {
        Accept: 'application/json',
        ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: kept as text
    }
    return { status: response.status, body: parsed };
  };

  const users: Record<string, string> = { admin: '*', viewer: 'read', writer: 'write', 'flows-only': 'flows.read' };
  const token = async (username: string) => {
    const answer = await call('POST', '/auth/token', undefined, {
      client_id: 'node-red-admin',
      grant_type: 'password',
      scope: users[username] ?? '',
      username,
      password: username,
    });
    const accessToken = (answer.body as { access_token?: string } | undefined)?.access_token;
    if (answer.status !== 200 || !accessToken) throw new Error(`no token for ${username}: ${answer.status}`);
    return accessToken;
  };

  return { url, child, userDir, output: () => output, token, call, stop };
}

/** Polls until `probe` gives something (not undefined/false). */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 10000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const found = await probe();
    if (found !== undefined && found !== false) return found as T;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
