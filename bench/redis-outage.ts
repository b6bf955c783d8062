/**
 * A Redis outage under a fleet: `node build/bench/redis-outage.js [outage s] [lifetime s] [after s] [devices]`
 * (defaults 86, 60, 70, 1000). Two server instances in this process share one redis-server (started here, on a
 * free port, with an append-only file); half of the simulated devices register with each, one observation is made;
 * Redis is killed (SIGKILL) for the outage and started again on its data; after a while the figures are printed:
 * registrations expired and registered again, what Redis holds, whether the observation is still there. Needs
 * Debian's redis-server. Everything it starts is stopped before it exits.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startFleet } from '../lib/client';
import { Lwm2mServer } from '../lib/server/lwm2m-server';
import { RedisLink, RedisObservationStore, RedisRegistrationStore, RedisSecurityStore } from '../lib/store/redis';
import { SecretBox } from '../lib/store/secret-box';

const [outageS, lifetimeS, afterS, devices] = [86, 60, 70, 1000].map((fallback, index) => {
  const given = Number(process.argv[2 + index]);
  return Number.isFinite(given) && given > 0 ? given : fallback;
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function redisServer(port: number, dir: string): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--save', ''],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve, reject) => {
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${output}`)));
  });
  child.stdout!.resume();
  return child;
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  return exited;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function instance(url: string, instanceId: string) {
  const link = new RedisLink({ url, prefix: 'outage-bench:', instanceId, secrets: new SecretBox('outage bench') });
  const registrationStore = new RedisRegistrationStore(link);
  const observationStore = new RedisObservationStore(link);
  const securityStore = new RedisSecurityStore(link);
  await link.open(() => Promise.all([registrationStore.load(), observationStore.load(), securityStore.load()]));
  const server = new Lwm2mServer({
    address: '127.0.0.1',
    port: 0,
    registrationStore,
    observationStore,
    securityStore,
    cluster: link,
  });
  const port = (await server.start()).port;
  return { link, server, registrationStore, port };
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lwm2m-outage-bench-'));
  const redisPort = await freePort();
  let redis = await redisServer(redisPort, dir);
  const url = `redis://127.0.0.1:${redisPort}`;
  const [a, b] = [await instance(url, 'A'), await instance(url, 'B')];
  const counts = { expired: 0, registered: 0, replaced: 0, errors: 0 };
  for (const { server } of [a, b]) {
    server.on('expired', () => counts.expired++);
    server.on('registered', (_registration, replaced) => {
      counts.registered++;
      if (replaced) counts.replaced++;
    });
    server.on('error', () => counts.errors++);
  }
  const half = Math.floor(devices / 2);
  const fleets = [
    await startFleet({ serverUri: `coap://127.0.0.1:${a.port}`, count: half, prefix: 'a-', lifetime: lifetimeS }),
    await startFleet({
      serverUri: `coap://127.0.0.1:${b.port}`,
      count: devices - half,
      prefix: 'b-',
      lifetime: lifetimeS,
    }),
  ];
  try {
    while (fleets.reduce((sum, fleet) => sum + fleet.stats().registered, 0) < devices) await sleep(100);
    while ((await a.registrationStore.size()) < devices || (await b.registrationStore.size()) < devices)
      await sleep(100);
    await a.server.observe('a-1', '/3/0/13', { owner: 'bench' });
    const before = { ...counts };
    console.log(`${devices} devices registered (lifetime ${lifetimeS} s); Redis killed for ${outageS} s`);
    await stop(redis);
    await sleep(outageS * 1000);
    redis = await redisServer(redisPort, dir);
    console.log(`Redis back; figures ${afterS} s later:`);
    await sleep(afterS * 1000);
    const stats = fleets.map((fleet) => fleet.stats());
    console.log(
      JSON.stringify(
        {
          expired: counts.expired - before.expired,
          registeredAgain: counts.registered - before.registered,
          serverErrors: counts.errors - before.errors,
          registrationsInRedis: await a.link.client.hlen('outage-bench:registrations'),
          devicesRegistered: stats.reduce((sum, s) => sum + s.registered, 0),
          deviceReRegistrations: stats.reduce((sum, s) => sum + s.reRegistrations, 0),
          observationStillStored: (await a.server.listObservations('a-1')).length === 1,
        },
        null,
        2,
      ),
    );
  } finally {
    for (const fleet of fleets) await fleet.stop({ deregister: false });
    for (const { server, link } of [a, b]) {
      await server.stop();
      await link.close();
    }
    await stop(redis);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
