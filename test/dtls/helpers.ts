import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as dgram from 'node:dgram';
import { uint16, uint8, vector } from '../../lib/dtls/bytes';
import { DTLS_1_2 } from '../../lib/dtls/constants';
import { encodeExtensions } from '../../lib/dtls/messages';
import { DtlsTransport, type DtlsServerOptions } from '../../lib/dtls';
import type { Peer } from '../../lib/transport/types';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `pred` every few ms until it holds (or throws after timeoutMs). */
export async function waitFor(pred: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Whether an executable is on the PATH (tests skip without it). */
export function hasBinary(name: string): boolean {
  const probe = spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
  return probe.status === 0;
}

export const PSK_IDENTITY = 'dev1';
/** "secretPSK": node-dtls-client and libcoap take the key as text, openssl as hex. */
export const PSK_KEY = Buffer.from('secretPSK');

/** A ClientHello body (for flooding and parser tests). */
export function encodeClientHello(options: {
  cipherSuites: number[];
  cookie?: Buffer;
  extensions?: Array<[number, Buffer]>;
  random?: Buffer;
}): Buffer {
  const suites = Buffer.concat(options.cipherSuites.map((suite) => uint16(suite)));
  return Buffer.concat([
    uint16(DTLS_1_2),
    options.random ?? randomBytes(32),
    vector(1, Buffer.alloc(0)),
    vector(1, options.cookie ?? Buffer.alloc(0)),
    vector(2, suites),
    vector(1, uint8(0)),
    encodeExtensions(options.extensions ?? []),
  ]);
}

export interface EchoServer {
  transport: DtlsTransport;
  port: number;
  received: Array<{ data: string; peer: Peer }>;
  sessions: Peer[];
  closed: Array<{ peer: Peer; reason: string }>;
  failures: Array<{ peer: Peer; reason: string }>;
  close(): Promise<void>;
}

/** A DtlsTransport on 127.0.0.1 that echoes every datagram back, recording events. */
export async function startEchoServer(options: DtlsServerOptions): Promise<EchoServer> {
  const transport = new DtlsTransport({ address: '127.0.0.1', port: 0, ...options });
  const server: EchoServer = {
    transport,
    port: 0,
    received: [],
    sessions: [],
    closed: [],
    failures: [],
    close: () => transport.close(),
  };
  transport.onDatagram((data, peer) => {
    server.received.push({ data: data.toString(), peer });
    transport.send(data, peer);
  });
  transport.on('session', (peer) => server.sessions.push(peer));
  transport.on('sessionClosed', (peer, reason) => server.closed.push({ peer, reason }));
  transport.on('handshakeFailed', (peer, reason) => server.failures.push({ peer, reason }));
  server.port = (await transport.start()).port;
  return server;
}

/** A child process (openssl s_client) whose output we collect and that we always kill. */
export class PeerProcess {
  output = '';
  exited = false;
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly exit: Promise<void>;

  constructor(command: string, args: string[]) {
    this.child = spawn(command, args);
    this.child.stdout.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.child.stderr.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.child.stdin.on('error', () => undefined); // the process may be gone already
    this.exit = new Promise((resolve) => this.child.on('close', () => resolve()));
    void this.exit.then(() => (this.exited = true));
  }

  write(text: string): void {
    this.child.stdin.write(text);
  }

  async stop(): Promise<void> {
    if (!this.exited) this.child.kill('SIGTERM');
    await this.exit;
  }

  waitForExit(): Promise<void> {
    return this.exit;
  }
}

/**
 * openssl s_client -dtls1_2 to 127.0.0.1:`port` with a PSK: identity PSK_IDENTITY, `key` in hex (PSK_KEY unless
 * given), `cipher` (PSK-AES128-CCM8 unless given), then the `extra` arguments.
 */
export function opensslPskClient(
  port: number,
  options: { cipher?: string; key?: string; extra?: string[] } = {},
): PeerProcess {
  return new PeerProcess('openssl', [
    's_client',
    '-dtls1_2',
    '-connect',
    `127.0.0.1:${port}`,
    '-psk',
    options.key ?? PSK_KEY.toString('hex'),
    '-psk_identity',
    PSK_IDENTITY,
    '-cipher',
    options.cipher ?? 'PSK-AES128-CCM8',
    ...(options.extra ?? []),
  ]);
}

/** Runs a command to completion (coap-client); resolves with its output whatever the exit code. */
export function run(
  command: string,
  args: string[],
  timeoutMs = 15000,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args);
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

type NodeDtlsSocket = import('events').EventEmitter & { send(data: Buffer): void; close(): void };

/** node-dtls-client (a DTLS 1.2 PSK client we did not write): connects, returns the socket and what it got. */
export function nodeDtlsClient(
  port: number,
  psk: Record<string, string>,
  options: { ciphers?: string[]; timeout?: number; address?: string } = {},
): { socket: NodeDtlsSocket; connected: Promise<void>; messages: Buffer[]; closed: Promise<void> } {
  const { dtls } = require('node-dtls-client') as {
    dtls: { createSocket(options: Record<string, unknown>): NodeDtlsSocket };
  };
  const address = options.address ?? '127.0.0.1';
  const socket = dtls.createSocket({
    type: address.includes(':') ? 'udp6' : 'udp4',
    address,
    port,
    psk,
    timeout: options.timeout ?? 5000,
    ...(options.ciphers !== undefined ? { ciphers: options.ciphers } : {}),
  });
  const messages: Buffer[] = [];
  socket.on('message', (message: Buffer) => messages.push(message));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const connected = new Promise<void>((resolve, reject) => {
    socket.once('connected', () => resolve());
    socket.once('error', (err: Error) => reject(err));
  });
  connected.catch(() => undefined);
  return { socket, connected, messages, closed };
}

/**
 * A UDP relay between clients and the server: every client appears to the server as the relay's
 * one upstream address, and `tap` sees (and may rewrite, drop or duplicate) client datagrams.
 */
export class UdpRelay {
  tap: ((datagram: Buffer) => Buffer[]) | undefined;
  /** The same for datagrams from the server. */
  tapFromServer: ((datagram: Buffer) => Buffer[]) | undefined;
  readonly fromClient: Buffer[] = [];
  readonly fromServer: Buffer[] = [];
  private readonly downstream = dgram.createSocket('udp4');
  private readonly upstream = dgram.createSocket('udp4');
  private client: { address: string; port: number } | undefined;

  constructor(private readonly serverPort: number) {
    this.downstream.on('message', (datagram, rinfo) => {
      this.client = { address: rinfo.address, port: rinfo.port };
      this.fromClient.push(datagram);
      for (const out of this.tap ? this.tap(datagram) : [datagram])
        this.upstream.send(out, this.serverPort, '127.0.0.1');
    });
    this.upstream.on('message', (datagram) => {
      this.fromServer.push(datagram);
      const client = this.client;
      if (client === undefined) return;
      for (const out of this.tapFromServer ? this.tapFromServer(datagram) : [datagram]) {
        this.downstream.send(out, client.port, client.address);
      }
    });
  }

  async start(): Promise<number> {
    await new Promise<void>((resolve) => this.upstream.bind(0, '127.0.0.1', () => resolve()));
    await new Promise<void>((resolve) => this.downstream.bind(0, '127.0.0.1', () => resolve()));
    return this.downstream.address().port;
  }

  /** Sends a datagram to the server as if from the client. */
  inject(datagram: Buffer): void {
    this.upstream.send(datagram, this.serverPort, '127.0.0.1');
  }

  get upstreamPort(): number {
    return this.upstream.address().port;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.downstream.close(() => resolve()));
    await new Promise<void>((resolve) => this.upstream.close(() => resolve()));
  }
}

/** Certificates and keys made by the openssl CLI for one test run, in a temp directory. */
export interface TestPki {
  dir: string;
  /** File path of each item by name: `<name>.pem` (certificate) and `<name>.key` (P-256 key, SEC1 PEM). */
  path(file: string): string;
  read(file: string): Buffer;
  remove(): void;
}

/**
 * A root CA, an intermediate CA under it, server certificates (one of them bigger than a datagram)
 * and client certificates (one directly under the root, one under the intermediate), plus a rogue CA
 * with a client of its own.
 */
export function createTestPki(): TestPki {
  const { mkdtempSync, readFileSync, rmSync, writeFileSync } = require('node:fs') as typeof import('node:fs');
  const { join } = require('node:path') as typeof import('node:path');
  const { tmpdir } = require('node:os') as typeof import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'dtls-pki-'));
  const path = (file: string) => join(dir, file);
  const openssl = (...args: string[]) => {
    const result = spawnSync('openssl', args, { cwd: dir });
    if (result.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${result.stderr.toString()}`);
  };
  writeFileSync(path('ca.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=keyCertSign,cRLSign\n');
  writeFileSync(path('leaf.ext'), 'basicConstraints=CA:FALSE\n');
  // Enough names to make a certificate bigger than one datagram (its Certificate message must be fragmented).
  const names = Array.from({ length: 80 }, (_, i) => `DNS:host-${i}.lwm2m.example.com`).join(',');
  writeFileSync(path('big.ext'), `basicConstraints=CA:FALSE\nsubjectAltName=${names}\n`);
  const key = (name: string) => openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`);
  const root = (name: string) => {
    key(name);
    openssl('req', '-x509', '-new', '-key', `${name}.key`, '-subj', `/CN=${name}`, '-days', '2', '-out', `${name}.pem`);
  };
  const issue = (name: string, issuer: string, ext: string) => {
    key(name);
    openssl('req', '-new', '-key', `${name}.key`, '-subj', `/CN=${name}`, '-out', `${name}.csr`);
    openssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${issuer}.pem`,
      '-CAkey',
      `${issuer}.key`,
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      ext,
      '-out',
      `${name}.pem`,
    );
  };
  root('test-ca');
  issue('intermediate-ca', 'test-ca', 'ca.ext');
  issue('server', 'test-ca', 'leaf.ext');
  issue('big-server', 'test-ca', 'big.ext');
  issue('client-1', 'test-ca', 'leaf.ext');
  issue('client-2', 'intermediate-ca', 'leaf.ext');
  root('rogue-ca');
  issue('rogue-client', 'rogue-ca', 'leaf.ext');
  return {
    dir,
    path,
    read: (file: string) => readFileSync(path(file)),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
