import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { Lwm2mServer } from '../../lib/server/lwm2m-server';
import {
  RedisDtlsSessionStore,
  RedisLink,
  RedisObservationStore,
  RedisRegistrationStore,
  RedisSecurityStore,
} from '../../lib/store/redis';
import { SecretBox } from '../../lib/store/secret-box';
import { FAST_COAP } from '../client/helpers';
import { freeTcpPort } from '../nodes/helper';
export { storedRegistration } from './stored-registration';

/** Whether Debian's redis-server is installed (.ci/run installs it). */
export function haveRedisServer(): boolean {
  return spawnSync('redis-server', ['--version']).status === 0;
}

/** A real redis-server on a free port, without persistence; `stop()` ends it by its PID. */
export async function startRedis(options: { port?: number; dataDir?: string } = {}): Promise<{
  url: string;
  port: number;
  process: ChildProcess;
  stop(signal?: NodeJS.Signals): Promise<void>;
}> {
  const port = options.port ?? (await freeTcpPort());
  // With a data directory it keeps an append-only file (a restart finds the data again); without, nothing.
  const persistence = options.dataDir
    ? ['--dir', options.dataDir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '']
    : ['--save', '', '--appendonly', 'no'];
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', ...persistence], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${output}`)), 10_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${output}`)));
  });
  child.stdout!.resume();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    process: child,
    stop: async (signal: NodeJS.Signals = 'SIGKILL') => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill(signal);
      await exited;
    },
  };
}

/**
 * For a describe block: an unhandled promise rejection ends the process, as in Node-RED. Mocha listens for them
 * itself and re-emits them to nobody, so without this one would pass unnoticed; thrown from here it is an uncaught
 * exception, which mocha reports as the failure of the running test.
 */
export function unhandledRejectionsCrash(): void {
  const rethrow = (reason: unknown) => {
    throw reason;
  };
  before(() => process.on('unhandledRejection', rethrow));
  after(() => process.off('unhandledRejection', rethrow));
}

export const TEST_SECRET = new SecretBox('cluster test secret');

/** One server instance on a shared Redis: its link, stores and server (not started). */
export function clusterInstance(url: string, prefix: string, instanceId: string, port = 0) {
  const link = new RedisLink({ url, prefix, instanceId, secrets: TEST_SECRET, heartbeatMs: 300 });
  const registrationStore = new RedisRegistrationStore(link);
  const observationStore = new RedisObservationStore(link);
  const securityStore = new RedisSecurityStore(link);
  const dtlsSessions = new RedisDtlsSessionStore(link);
  const server = new Lwm2mServer({
    address: '127.0.0.1',
    port,
    lifetimeGraceSeconds: 0,
    coap: { ...FAST_COAP },
    registrationStore,
    observationStore,
    securityStore,
    cluster: link,
  });
  return {
    link,
    server,
    registrationStore,
    observationStore,
    async start(): Promise<number> {
      // As the nodes open it: read at start, and read again after each outage.
      await link.open(() =>
        Promise.all([registrationStore.load(), observationStore.load(), securityStore.load(), dtlsSessions.load()]),
      );
      return (await server.start()).port;
    },
    async stop(): Promise<void> {
      await server.stop();
      await link.close();
    },
  };
}
