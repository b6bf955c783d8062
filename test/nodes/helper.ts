/** node-red-node-test-helper, typed just enough for our tests. */
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Test } from 'supertest';
import type { Registration } from '../../lib/server/registration';
import type { Lwm2mServerConfigNode } from '../../nodes/shared/server-config';

const helper = require('node-red-node-test-helper') as {
  init(runtimePath: string, settings?: Record<string, unknown>): void;
  load(nodes: unknown[], flow: unknown[], credentials?: unknown): Promise<void>;
  unload(): Promise<void>;
  getNode(id: string): TestNode;
  startServer(): Promise<void>;
  stopServer(): Promise<void>;
  settings(settings: Record<string, unknown>): void;
  /** supertest on Node-RED's admin app (the routes of the device browser). */
  request(): AdminAgent;
};

export interface AdminAgent {
  get(url: string): Test;
  post(url: string): Test;
  delete(url: string): Test;
}

export interface TestNode {
  id: string;
  on(event: string, listener: (...args: any[]) => void): void; // eslint-disable-line @typescript-eslint/no-explicit-any
  receive(msg: Record<string, unknown>): void;
  [key: string]: unknown;
}

/**
 * A user directory of this test run: the server nodes keep their file stores there (removed when the run
 * ends). Tests that need a store of their own give the server node a `storeDir`.
 */
export const testUserDir = mkdtempSync(path.join(os.tmpdir(), 'lwm2m-test-userdir-'));
process.on('exit', () => rmSync(testUserDir, { recursive: true, force: true }));

helper.init(require.resolve('node-red'), { userDir: testUserDir });

export { helper };

/** Node modules as Node-RED loads them: the compiled files in dist/nodes (build/nodes links there). */
export const ourNodes = [
  require('../../nodes/lwm2m-server'),
  require('../../nodes/lwm2m-register-in'),
  require('../../nodes/lwm2m-read'),
  require('../../nodes/lwm2m-write'),
  require('../../nodes/lwm2m-execute'),
  require('../../nodes/lwm2m-observe'),
];

/**
 * A flow of one tab: the server node `srv` on 127.0.0.1, any free port, with short CoAP timeouts (`server` changes
 * its settings), and `nodes` on the tab.
 */
export function flowWith(
  nodes: Record<string, unknown>[],
  server: Record<string, unknown> = {},
): Record<string, unknown>[] {
  return [
    { id: 'f1', type: 'tab', label: 'test' },
    {
      id: 'srv',
      type: 'lwm2m-server',
      address: '127.0.0.1',
      port: '0',
      ackTimeout: '200',
      maxRetransmit: '2',
      ...server,
    },
    ...nodes.map((node) => ({ z: 'f1', ...node })),
  ];
}

/** The UDP port of the server node `srv` of the loaded flow, once it listens. */
export async function serverPort(): Promise<number> {
  const config = helper.getNode('srv') as unknown as Lwm2mServerConfigNode;
  await config.ready();
  return config.server.address!.port;
}

/**
 * Loads `modules` with a flow of the server node `srv` (127.0.0.1, any free port, `settings`) and a register-in node
 * using it; resolves with the config node once it listens.
 */
export async function loadServerNode(
  settings: Record<string, unknown>,
  modules: unknown[] = ourNodes,
): Promise<Lwm2mServerConfigNode> {
  await helper.load(modules, [
    { id: 'f1', type: 'tab', label: 'test' },
    { id: 'srv', type: 'lwm2m-server', address: '127.0.0.1', port: '0', ...settings },
    { id: 'reg', type: 'lwm2m-register-in', z: 'f1', server: 'srv', wires: [[]] },
  ]);
  const config = helper.getNode('srv') as unknown as Lwm2mServerConfigNode;
  await config.ready();
  return config;
}

/** A UDP port that was free a moment ago (for tests that redeploy on a fixed port). */
export async function freeUdpPort(): Promise<number> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  const { port } = socket.address() as AddressInfo;
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

/** A TCP port that was free a moment ago (Node-RED's HTTP port, a redis-server). */
export function freeTcpPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves with the next msg a node sends. */
export function nextMessage(node: TestNode, timeoutMs = 5000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no msg from ${node.id} within ${timeoutMs} ms`)), timeoutMs);
    node.on('input', (msg: Record<string, unknown>) => {
      clearTimeout(timer);
      resolve(msg);
    });
  });
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls until `condition` holds; throws naming `what` after `timeoutMs`. The default is generous (a
 * datagram lost to a busy machine costs a CoAP retransmission of 2-3 s) and below mocha's 20 s, so a
 * miss fails with its reason instead of a bare mocha timeout.
 */
export async function until(condition: () => boolean, what = 'condition', timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(10);
  }
}

/**
 * Resolves with the registration of `endpoint` once the server of `config` has it (at once if it has).
 * A simulated device deployed with its server sends its first Register before the server is listening;
 * its CoAP retransmission registers it 2-3 s later, later still on a busy machine.
 */
export async function registrationOn(
  config: Lwm2mServerConfigNode,
  endpoint: string,
  timeoutMs = 15_000,
): Promise<Registration> {
  await config.ready();
  const server = config.server;
  return new Promise<Registration>((resolve, reject) => {
    const finish = (settle: () => void) => {
      clearTimeout(timer);
      server.off('registered', onRegistered);
      settle();
    };
    const timer = setTimeout(
      () => finish(() => reject(new Error(`${endpoint} did not register within ${timeoutMs} ms`))),
      timeoutMs,
    );
    const onRegistered = (registration: Registration) => {
      if (registration.endpoint === endpoint) finish(() => resolve(registration));
    };
    server.on('registered', onRegistered);
    // registered before we listened: the store has it
    server.getRegistration(endpoint).then(
      (registration) => {
        if (registration !== undefined) finish(() => resolve(registration));
      },
      (err: Error) => finish(() => reject(err)),
    );
  });
}

/** What a Catch node would get: done(err) reports through node.error(err, msg). */
export function nextError(node: TestNode): Promise<[Error, Record<string, unknown>]> {
  return new Promise((resolve) =>
    node.on('call:error', (call: { args: [Error, Record<string, unknown>] }) => resolve(call.args)),
  );
}
