/**
 * Figures for the half-open handshake budget (not a test: run it by hand after `npm run build:test`):
 *
 *   node --expose-gc build/test/dtls/flood-figures.js
 *
 * 1. An unpaced flood of completed cookie exchanges from 127.0.0.1 against a DtlsTransport with the LwM2M
 *    server's per-address budget (500), while openssl s_client (PSK, CCM_8) handshakes from the same address
 *    thirty times in a row: how many complete, the flood's size and rate, evictions.
 * 2. The memory half-open handshakes hold: the default total budget (10,000) filled from 10,100 source ports,
 *    heap and external memory measured after a GC (run first, on a fresh heap).
 */
import { CookieFlooder } from './flooder';
import { PSK_IDENTITY, PSK_KEY, PeerProcess, opensslPskClient, startEchoServer, waitFor } from './helpers';

const pskKey = (identity: string) => (identity === PSK_IDENTITY ? PSK_KEY : undefined);

async function honestUnderFlood(): Promise<void> {
  const server = await startEchoServer({ pskKey, maxHandshakesPerAddress: 500 });
  const flooder = new CookieFlooder(server.port, { sockets: 700, lanes: 64 });
  await flooder.start();
  const started = Date.now();
  await waitFor(() => server.transport.stats.handshakesEvicted > 0, 60_000, 'the budget full');
  let completed = 0;
  const attempts = 30;
  for (let i = 0; i < attempts; i++) {
    const sessions = server.sessions.length;
    const openssl: PeerProcess = opensslPskClient(server.port, { extra: ['-ign_eof'] });
    const ok = await waitFor(() => server.sessions.length > sessions, 20_000, 'the handshake').then(
      () => true,
      () => false,
    );
    if (ok) completed++;
    await openssl.stop();
  }
  const seconds = (Date.now() - started) / 1000;
  const stats = server.transport.stats;
  await flooder.stop();
  await server.close();
  console.log(
    `honest openssl handshakes completed under the flood: ${completed}/${attempts}; ` +
      `flood: ${stats.handshakesStarted} completed cookie exchanges (half-open handshakes) from 127.0.0.1 in ` +
      `${seconds.toFixed(1)} s (${Math.round(stats.handshakesStarted / seconds)}/s), ` +
      `${stats.helloVerifyRequests} HelloVerifyRequests, ${stats.handshakesEvicted} evicted, ` +
      `${stats.handshakesRefused} refused, ${stats.handshakesCompleted} completed`,
  );
}

async function memoryPerHalfOpen(): Promise<void> {
  const count = 10_000;
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with node --expose-gc');
  const server = await startEchoServer({ pskKey, maxHandshakesPerAddress: count, maxHandshakes: count });
  const flooder = new CookieFlooder(server.port, { sockets: count + 100, lanes: 64 });
  await flooder.start();
  const before = await settledMemory(gc);
  await waitFor(() => server.transport.handshakeCount === count, 120_000, 'the half-open handshakes');
  await flooder.stop();
  const after = await settledMemory(gc);
  const held = server.transport.handshakeCount;
  const perEntry = (after - before) / held;
  await server.close();
  console.log(
    `memory of half-open handshakes: ${held} held ${((after - before) / 1e6).toFixed(1)} MB ` +
      `(heap + external), ${(perEntry / 1024).toFixed(1)} KB each; ` +
      `one address's share in the LwM2M server (500) ~${((perEntry * 500) / 1e6).toFixed(1)} MB`,
  );
}

async function settledMemory(gc: () => void): Promise<number> {
  for (let i = 0; i < 3; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    gc();
  }
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.external;
}

async function main(): Promise<void> {
  await memoryPerHalfOpen();
  await honestUnderFlood();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
