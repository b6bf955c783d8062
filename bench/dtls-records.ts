/**
 * Micro-benchmark of the DTLS server's per-record path, in one process, no sockets: what a request over
 * an established TLS_PSK_WITH_AES_128_CCM_8 session costs the server besides the UDP and CoAP work.
 * Run after a build:
 *
 *   node build/bench/dtls-records.js [--rounds 7] [--ms 400] [--sessions 16]
 *   node --expose-gc build/bench/dtls-records.js --memory 1500
 *
 * Prints, as the median of the rounds, in CPU time (user + system, less sensitive to a busy machine):
 * - a request's DTLS path: the datagram split into records, routed to its session (by address), the
 *   anti-replay check, decryption, delivery; then the answer sealed and handed to the socket, as
 *   DtlsTransport does it (a CON GET in, a 2.05 with a short payload out; the CoAP layer is left out);
 * - record protection alone: encrypt and decrypt of one record of 40, 100 and 200 bytes;
 * - bytes of JS heap allocated per request, from batches that no garbage collection interrupted (the
 *   ArrayBuffer backing stores outside the heap are left out: their count moves with background frees).
 * With `--memory N`: the RSS and JS heap that N sessions' CCM keys hold once each key has protected a record
 * (their AES objects made and cached; at most 4096 keys stay cached), per session.
 * Not run by `npm test`.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { connectionKeys, keyBlockLength, type ConnectionKeys, type RecordContext } from '../lib/dtls/cipher';
import { DtlsConnection, type ConnectionHost } from '../lib/dtls/connection';
import { ContentType, DTLS_1_2 } from '../lib/dtls/constants';
import { CONNECTION_ID_LENGTH } from '../lib/dtls/peer-table';
import { splitRecords } from '../lib/dtls/record';
import { RecordLayer } from '../lib/dtls/record-layer';
import { ReplayWindow } from '../lib/dtls/replay';
import type { StoredDtlsConnection } from '../lib/dtls/session-data';
import type { Peer } from '../lib/transport/types';

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const CIPHER = 'aes-128-ccm8';
/** A CON GET /3/0/9 with a 4-byte token, and its piggybacked 2.05 with a 3-byte payload. */
const REQUEST = Buffer.from([0x44, 0x01, 0x12, 0x34, 1, 2, 3, 4, 0xb1, 0x33, 0x01, 0x30, 0x01, 0x39]);
const ANSWER = Buffer.from([0x64, 0x45, 0x12, 0x34, 1, 2, 3, 4, 0xff, 0x31, 0x30, 0x30]);

interface Session {
  peer: Peer;
  server: DtlsConnection;
  /** The device's record layer (the same keys, its own objects). */
  device: RecordLayer;
}

let sent = 0;
let sentBytes = 0;
const byAddress = new Map<string, Session>();

const host: ConnectionHost = {
  pmtu: 1200,
  handshakeTimeoutMs: 60_000,
  sendDatagram: (datagram) => {
    sent++;
    sentBytes += datagram.length;
  },
  deliver: (data, peer) => {
    // What the CoAP endpoint's answer does: DtlsTransport.send looks the session up by the peer's key.
    if (data.length !== REQUEST.length) throw new Error('bad plaintext');
    byAddress.get(peer.key)?.server.send(ANSWER);
  },
  established: () => undefined,
  failed: (_c, reason) => {
    throw new Error(`failed: ${reason}`);
  },
  closed: (_c, reason) => {
    throw new Error(`closed: ${reason}`);
  },
  moved: () => undefined,
  verifyAdopted: () => Promise.resolve(undefined),
  dropped: (why) => {
    throw new Error(`dropped: ${why}`);
  },
  retransmitted: () => undefined,
};

/** An established session as an adopted connection (no handshake), and the device's side of it. */
function openSession(index: number): Session {
  const keyBlock = randomBytes(keyBlockLength(CIPHER));
  const stored: StoredDtlsConnection = {
    version: 1,
    localPort: 5684,
    address: '127.0.0.1',
    port: 40000 + index,
    identity: { mode: 'psk', identity: `dev${index}` },
    credential: { kind: 'psk', salt: randomBytes(16), fingerprint: randomBytes(32) },
    suiteId: 0xc0a8,
    keyBlock,
    readEpoch: 1,
    writeEpoch: 1,
    nextWriteSequence: 0,
    replayHighest: -1,
    replayBitmap: Buffer.alloc(8),
    lastActivity: Date.now(),
  };
  const peer: Peer = { address: stored.address, port: stored.port, key: `127.0.0.1:${stored.port}` };
  const server = new DtlsConnection(host, peer, undefined, 0, { stored, keys: connectionKeys(CIPHER, keyBlock) });
  const deviceKeys = connectionKeys(CIPHER, keyBlock);
  const device = RecordLayer.adopted(
    undefined,
    { client: deviceKeys.server, server: deviceKeys.client },
    0,
    new ReplayWindow(),
  );
  const session = { peer, server, device };
  byAddress.set(peer.key, session);
  return session;
}

/** What DtlsTransport.handleDatagram does with a datagram from an established session's address. */
function receive(datagram: Buffer, from: Peer): void {
  const { records } = splitRecords(datagram, CONNECTION_ID_LENGTH);
  for (const record of records) byAddress.get(from.key)?.server.receive(record, from);
}

/** `count` requests, round-robin over the sessions, sealed by the devices in advance. */
function requests(sessions: Session[], count: number): Array<[Buffer, Peer]> {
  const out: Array<[Buffer, Peer]> = [];
  for (let i = 0; i < count; i++) {
    const session = sessions[i % sessions.length];
    out.push([session.device.seal(ContentType.applicationData, 1, REQUEST), session.peer]);
  }
  return out;
}

function cpuUs(): number {
  const used = process.cpuUsage();
  return used.user + used.system;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** CPU ns per request over batches prepared outside the measured time, for about `ms` of CPU. */
function requestRound(sessions: Session[], ms: number): number {
  let spentUs = 0;
  let done = 0;
  while (spentUs < ms * 1000) {
    const batch = requests(sessions, 2000);
    const before = sent;
    const start = cpuUs();
    for (const [datagram, peer] of batch) receive(datagram, peer);
    spentUs += cpuUs() - start;
    done += batch.length;
    if (sent - before !== batch.length) throw new Error(`${sent - before} answers to ${batch.length} requests`);
  }
  return (spentUs * 1000) / done;
}

/**
 * CPU ns per encrypt + decrypt of one `size`-byte record, for about `ms` of CPU: sealed with the server's write key
 * and opened by the peer's own copy of it (its own AES objects and keystream batch, as on the wire).
 */
function protectionRound(
  keys: ConnectionKeys,
  peerKeys: ConnectionKeys,
  size: number,
  ms: number,
  sequence: { next: number },
): number {
  const plaintext = randomBytes(size);
  const context: RecordContext = { type: ContentType.applicationData, version: DTLS_1_2, epoch: 1, sequence: 0 };
  let spentUs = 0;
  let done = 0;
  while (spentUs < ms * 1000) {
    const start = cpuUs();
    for (let i = 0; i < 500; i++) {
      context.sequence = sequence.next++;
      const fragment = keys.server.encrypt(context, plaintext);
      if (peerKeys.server.decrypt(context, fragment) === undefined) throw new Error('does not authenticate');
    }
    spentUs += cpuUs() - start;
    done += 500;
  }
  return (spentUs * 1000) / done;
}

let collections = 0;
new PerformanceObserver((list) => {
  collections += list.getEntries().length;
}).observe({ entryTypes: ['gc'] });

/** Bytes of JS heap allocated per request: the median of batches without a collection. */
async function allocations(sessions: Session[]): Promise<number | undefined> {
  const found: number[] = [];
  for (let attempt = 0; attempt < 40 && found.length < 5; attempt++) {
    const batch = requests(sessions, 500);
    await new Promise((resolve) => setImmediate(resolve)); // let pending GC entries arrive
    const seen = collections;
    const before = process.memoryUsage().heapUsed;
    for (const [datagram, peer] of batch) receive(datagram, peer);
    const after = process.memoryUsage().heapUsed;
    await new Promise((resolve) => setImmediate(resolve));
    if (collections !== seen) continue;
    found.push((after - before) / batch.length);
  }
  return found.length === 0 ? undefined : median(found);
}

/** RSS and JS heap per session that `count` sessions' CCM keys hold once both have protected a record. */
async function keyMemory(count: number): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('--memory needs node --expose-gc');
  const settle = async () => {
    for (let i = 0; i < 4; i++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return process.memoryUsage();
  };
  const context: RecordContext = { type: ContentType.applicationData, version: DTLS_1_2, epoch: 1, sequence: 1 };
  const blocks = Array.from({ length: count }, () => randomBytes(keyBlockLength(CIPHER)));
  const before = await settle();
  const sessions = blocks.map((block) => connectionKeys(CIPHER, block));
  const keysOnly = await settle();
  for (const keys of sessions) {
    keys.client.encrypt(context, REQUEST);
    keys.server.encrypt(context, ANSWER);
  }
  const used = await settle();
  const per = (from: NodeJS.MemoryUsage, to: NodeJS.MemoryUsage, field: 'rss' | 'heapUsed') =>
    Math.round((to[field] - from[field]) / count).toLocaleString('en-US');
  console.log(
    `${count} sessions' CCM keys: ${per(before, keysOnly, 'rss')} B RSS (${per(before, keysOnly, 'heapUsed')} B JS ` +
      `heap) per session for the keys; once each key has protected a record (${Math.min(2 * count, 4096)} keys' AES ` +
      `objects cached) ${per(keysOnly, used, 'rss')} B RSS (${per(keysOnly, used, 'heapUsed')} B JS heap) more ` +
      `per session (${sessions.length} kept)`,
  );
}

async function main(): Promise<void> {
  const memorySessions = option('--memory', 0);
  if (memorySessions > 0) return keyMemory(memorySessions);
  const rounds = option('--rounds', 7);
  const ms = option('--ms', 400);
  const sessions = Array.from({ length: option('--sessions', 16) }, (_, i) => openSession(i));
  // The first record of an adopted session waits for the credential re-check (a promise): do it now.
  for (const [datagram, peer] of requests(sessions, sessions.length)) receive(datagram, peer);
  await new Promise((resolve) => setTimeout(resolve, 10));

  requestRound(sessions, ms); // warm up
  const perRequest: number[] = [];
  for (let r = 0; r < rounds; r++) perRequest.push(requestRound(sessions, ms));
  const line = (name: string, values: number[]) =>
    console.log(
      `${name.padEnd(58)} ${Math.round(median(values)).toLocaleString('en-US').padStart(7)} ns  (rounds: ${values
        .map((v) => Math.round(v))
        .join(', ')})`,
    );
  line(`request over DTLS (${CIPHER}, ${sessions.length} sessions): record in + answer out`, perRequest);

  const block = randomBytes(keyBlockLength(CIPHER));
  const keys = connectionKeys(CIPHER, block);
  const peerKeys = connectionKeys(CIPHER, block);
  const sequence = { next: 0 };
  for (const size of [40, 100, 200]) {
    protectionRound(keys, peerKeys, size, ms / 2, sequence);
    const values: number[] = [];
    for (let r = 0; r < rounds; r++) values.push(protectionRound(keys, peerKeys, size, ms / 2, sequence));
    line(`record protection, encrypt + decrypt of ${size} bytes`, values);
  }

  const allocated = await allocations(sessions);
  console.log(
    allocated === undefined
      ? 'allocations per request: every batch was interrupted by a collection'
      : `allocations per request: ${Math.round(allocated)} bytes of JS heap (sent ${sent.toLocaleString(
          'en-US',
        )} answers, ${Math.round(sentBytes / sent)} bytes each)`,
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
