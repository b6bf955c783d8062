/** Entry point of every benchmark child process: `node build/bench/worker.js <role>`. */
import { serve, type Handler } from './rpc';
import { rawCleanup, rawHandlers } from './roles/raw';
import { serverCleanup, serverHandlers } from './roles/server';
import { deviceCleanup, deviceHandlers } from './roles/devices';
import { noderedCleanup, noderedHandlers } from './roles/nodered';
import { peerCleanup, peerHandlers } from './roles/peers';
import { memoryHandlers } from './roles/memory';
import { dtlsCleanup, dtlsHandlers } from './roles/dtls';

const roles: Record<string, [Record<string, Handler>, () => Promise<void> | void]> = {
  raw: [rawHandlers, rawCleanup],
  server: [serverHandlers, serverCleanup],
  devices: [deviceHandlers, deviceCleanup],
  nodered: [noderedHandlers, noderedCleanup],
  peer: [peerHandlers, peerCleanup],
  memory: [memoryHandlers, () => undefined],
  dtls: [dtlsHandlers, dtlsCleanup],
};

const role = roles[process.argv[2]];
if (!role) {
  console.error(`bench worker: unknown role ${process.argv[2]}`);
  process.exit(2);
}
serve(role[0], role[1]);
