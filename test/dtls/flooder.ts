/**
 * A flood of completed cookie exchanges from one address (127.0.0.1, many source ports): each second
 * ClientHello carries a valid cookie and leaves a half-open handshake on the server, which the flooder
 * never finishes. For the half-open budget test and its figures (flood-figures.ts).
 */
import { randomBytes } from 'node:crypto';
import * as dgram from 'node:dgram';
import { ByteReader } from '../../lib/dtls/bytes';
import { ContentType, HandshakeType } from '../../lib/dtls/constants';
import { encodeHandshakeFragment, parseHandshakeFragments } from '../../lib/dtls/handshake';
import { encodeRecord, parseRecords } from '../../lib/dtls/record';
import { encodeClientHello } from './helpers';

/** TLS_PSK_WITH_AES_128_CCM_8 */
const SUITE = 0xc0a8;
/** A step with no answer (a datagram lost under load) starts over with a new hello. */
const STEP_TIMEOUT_MS = 1000;

export interface FloodOptions {
  /** Exchanges in flight at once. */
  lanes?: number;
  /** Source ports used in turn (more than the server's per-address budget, or the flood only supersedes itself). */
  sockets?: number;
  /** New exchanges started per second at most; unset = as fast as the server answers. */
  ratePerSecond?: number;
}

function helloDatagram(random: Buffer, cookie: Buffer, messageSeq: number): Buffer {
  const body = encodeClientHello({ cipherSuites: [SUITE], cookie, random });
  const message = encodeHandshakeFragment(HandshakeType.clientHello, body.length, messageSeq, 0, body);
  return encodeRecord(ContentType.handshake, 0, messageSeq, message);
}

/** The first handshake message type of a datagram, and the cookie when it is a HelloVerifyRequest. */
function firstMessage(datagram: Buffer): { type: number; cookie?: Buffer } | undefined {
  try {
    const [record] = parseRecords(datagram);
    if (record?.type !== ContentType.handshake || record.epoch !== 0) return undefined;
    const [fragment] = parseHandshakeFragments(record.fragment);
    if (fragment.msgType !== HandshakeType.helloVerifyRequest) return { type: fragment.msgType };
    const reader = new ByteReader(fragment.fragment);
    reader.uint16();
    return { type: fragment.msgType, cookie: reader.vector(1) };
  } catch {
    return undefined;
  }
}

export class CookieFlooder {
  private readonly sockets: dgram.Socket[] = [];
  /** Which lane uses a socket now, by socket index. */
  private readonly owners = new Map<number, (datagram: Buffer) => void>();
  private nextSocket = 0;
  private running = false;
  private tokens = 0;
  private pacer: NodeJS.Timeout | undefined;
  private readonly waitingForToken: Array<() => void> = [];
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly port: number,
    private readonly options: FloodOptions = {},
  ) {}

  async start(): Promise<void> {
    const count = this.options.sockets ?? 700;
    for (let i = 0; i < count; i++) {
      const socket = dgram.createSocket('udp4');
      await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
      socket.on('message', (datagram) => this.owners.get(i)?.(datagram));
      this.sockets.push(socket);
    }
    this.running = true;
    const rate = this.options.ratePerSecond;
    if (rate !== undefined) {
      this.pacer = setInterval(() => {
        this.tokens = Math.min(this.tokens + rate / 100, rate);
        while (this.tokens >= 1 && this.waitingForToken.length > 0) {
          this.tokens--;
          this.waitingForToken.shift()?.();
        }
      }, 10);
    }
    for (let lane = 0; lane < (this.options.lanes ?? 32); lane++) this.nextExchange();
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.pacer !== undefined) clearInterval(this.pacer);
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.waitingForToken.length = 0;
    this.owners.clear();
    await Promise.all(this.sockets.map((socket) => new Promise<void>((resolve) => socket.close(() => resolve()))));
    this.sockets.length = 0;
  }

  /** One lane's next exchange, when the pace allows, on the next socket in turn. */
  private nextExchange(): void {
    if (!this.running) return;
    if (this.options.ratePerSecond === undefined) setImmediate(() => this.exchange());
    else this.waitingForToken.push(() => this.exchange());
  }

  private exchange(): void {
    if (!this.running) return;
    const index = this.nextSocket++ % this.sockets.length;
    const socket = this.sockets[index];
    const random = randomBytes(32);
    const finish = () => {
      clearTimeout(timer);
      this.timers.delete(timer);
      this.owners.delete(index);
      this.nextExchange();
    };
    const timer = setTimeout(finish, STEP_TIMEOUT_MS);
    this.timers.add(timer);
    this.owners.set(index, (datagram) => {
      const message = firstMessage(datagram);
      if (message?.cookie !== undefined) {
        socket.send(helloDatagram(random, message.cookie, 1), this.port, '127.0.0.1');
      } else if (message?.type === HandshakeType.serverHello) {
        finish(); // a half-open handshake the server took
      }
    });
    socket.send(helloDatagram(random, Buffer.alloc(0), 0), this.port, '127.0.0.1');
  }
}
