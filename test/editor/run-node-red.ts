/**
 * A child process for the editor tests: Node-RED embedded on an HTTP port the OS picks (port 0), with
 * adminAuth, loading this package from <userDir>/node_modules as an installed module (plugins included).
 * Prints `READY <port>` once the flows run. Argument: the user directory, which holds flows.json.
 *
 * Users (password = name): admin ('*'), viewer ('read'), writer ('write'), flows-only (['flows.read']).
 * LWM2M_TEST_SETTINGS (JSON) changes the settings: `{"adminAuth": false}` runs without adminAuth (the `npm start`
 * default), other keys (`httpAdminCors`) are passed on as they are.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const userDir = process.argv[2];
if (!userDir) throw new Error('usage: run-node-red <userDir>');

const RED = require('node-red') as {
  init(server: http.Server, settings: Record<string, unknown>): void;
  start(): Promise<void>;
  stop(): Promise<void>;
  httpAdmin: http.RequestListener;
  httpNode: http.RequestListener;
};
const express = require('express') as () => ((req: http.IncomingMessage, res: http.ServerResponse) => void) & {
  use(path: string, handler: http.RequestListener): void;
};

const users: Record<string, string | string[]> = {
  admin: '*',
  viewer: 'read',
  writer: 'write',
  'flows-only': ['flows.read'],
};
const userOf = (username: string) => (username in users ? { username, permissions: users[username] } : null);

const { adminAuth: withAdminAuth = true, ...extraSettings } = JSON.parse(process.env.LWM2M_TEST_SETTINGS || '{}') as {
  adminAuth?: boolean;
  [setting: string]: unknown;
};

const app = express();
const server = http.createServer(app);
RED.init(server, {
  userDir,
  flowFile: 'flows.json',
  credentialSecret: false,
  httpAdminRoot: '/',
  httpNodeRoot: '/api',
  uiHost: '127.0.0.1',
  logging: { console: { level: process.env.NODE_RED_LOG_LEVEL || 'warn', metrics: false, audit: false } },
  editorTheme: { tours: false, projects: { enabled: false }, palette: { editable: false } },
  telemetry: { enabled: false },
  diagnostics: { enabled: false },
  externalModules: { autoInstall: false, palette: { allowInstall: false } },
  ...(withAdminAuth
    ? {
        adminAuth: {
          type: 'credentials',
          users: async (username: string) => userOf(username),
          authenticate: async (username: string, password: string) => (password === username ? userOf(username) : null),
        },
      }
    : {}),
  ...extraSettings,
});
app.use('/', RED.httpAdmin);
app.use('/api', RED.httpNode);

server.listen(0, '127.0.0.1', () => {
  RED.start().then(
    () => console.log(`READY ${(server.address() as AddressInfo).port}`),
    (err: Error) => {
      console.error(`Node-RED did not start: ${err.stack}`);
      process.exit(1);
    },
  );
});

let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  const exit = () => process.exit(0);
  setTimeout(exit, 3000).unref();
  RED.stop().then(() => server.close(exit), exit);
});
