/**
 * Lean simulated devices: what a device must do for the server under test and nothing more. Each
 * one registers (a pre-encoded Register), answers a Read or an Observe of /3303/0/5700 with a
 * pre-encoded value in the format asked for (SenML JSON, SenML CBOR, TLV or text), and can send
 * NON notifications. Per device they keep an index, a registration location, an observe token and
 * a sequence number; answering a request is a header copy. Used two ways:
 *   - over UDP, one dgram socket per device (the load side of the read / notify benchmarks);
 *   - in memory, behind a DatagramTransport the server uses (the memory benchmark), no socket at all.
 */
import { encodeNode } from '../lib/content';
import { ContentFormat } from '../lib/content/types';
import { LwM2mPath } from '../lib/model/path';
import { ObjectModel } from '../lib/model/object-model';
import * as raw from './coap-raw';

export const LEAN_PATH = '/3303/0/5700';
const VALUE = 21.5;

/** Answers to a Read of /3303/0/5700, by content format. */
function valuePayloads(): Map<number, Buffer> {
  const model = ObjectModel.withBuiltins();
  const path = LwM2mPath.parse(LEAN_PATH);
  const node = { kind: 'resource' as const, id: 5700, type: 'float' as const, value: VALUE };
  const out = new Map<number, Buffer>();
  for (const format of [ContentFormat.TEXT, ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR, ContentFormat.TLV]) {
    out.set(format, encodeNode(node, format, path, model));
  }
  return out;
}

/** What a 1.1 device with one temperature sensor announces (as Lwm2mClient does). */
export const REGISTER_LINKS = '</>;rt="oma.lwm2m";ct=110,</1>;ver=1.1,</1/0>,</3/0>,</3303>;ver=1.1,</3303/0>';

export function registerRequest(endpoint: string, mid: number, token: Buffer, lifetime = 3600): Buffer {
  return raw.encode(
    raw.CON,
    raw.code('0.02'),
    mid,
    token,
    [
      ...raw.stringOptions(raw.OPT_URI_PATH, ['rd']),
      { number: raw.OPT_CONTENT_FORMAT, value: raw.uintBytes(ContentFormat.LINK_FORMAT) },
      ...raw.stringOptions(raw.OPT_URI_QUERY, [`ep=${endpoint}`, `lt=${lifetime}`, 'lwm2m=1.1', 'b=U']),
    ],
    Buffer.from(REGISTER_LINKS, 'utf8'),
  );
}

export function updateRequest(location: string[], mid: number, token: Buffer): Buffer {
  return raw.encode(raw.CON, raw.code('0.02'), mid, token, raw.stringOptions(raw.OPT_URI_PATH, location));
}

const CODE_CONTENT = raw.code('2.05');
const CODE_NOT_ACCEPTABLE = raw.code('4.06');

export interface LeanDevice {
  index: number;
  endpoint: string;
  location?: string[];
  /** Token of the server's observation (after an Observe). */
  observeToken?: Buffer;
  observeFormat?: number;
  seq: number;
  registerMid: number;
  /** This device's next message id (each device numbers its own messages, as a real one does). */
  mid: number;
  /** An exchange this device waits for (its own CON request): resolved by the matching ACK. */
  pending?: { mid: number; resolve: (msg: raw.RawMessage) => void };
}

/**
 * The protocol side of a lean device set; `send(device, datagram)` is how datagrams leave (a socket,
 * or an in-memory hand-off to the server).
 */
export class LeanProtocol {
  /** Answers to a Read, by content format. */
  readonly answers = valuePayloads();
  readonly devices: LeanDevice[] = [];
  registered = 0;
  requests = 0;
  notificationsSent = 0;
  private readonly onRegistered: Array<(d: LeanDevice) => void> = [];

  /**
   * `stateless`: keep nothing per device after start (no location, no observe token): the memory
   * benchmark runs these devices in the server's process and must not count their state as the server's.
   */
  constructor(
    readonly prefix: string,
    count: number,
    private readonly send: (device: LeanDevice, data: Buffer) => void,
    private readonly stateless = false,
  ) {
    for (let i = 0; i < count; i++)
      this.devices.push({ index: i, endpoint: `${prefix}${i + 1}`, seq: 1, registerMid: 0, mid: (i * 7919) & 0xffff });
  }

  whenRegistered(listener: (d: LeanDevice) => void): void {
    this.onRegistered.push(listener);
  }

  /** Sends the Register of one device. */
  register(device: LeanDevice): void {
    device.registerMid = device.mid = (device.mid + 1) & 0xffff;
    const token = Buffer.alloc(4);
    token.writeUInt32BE(device.index >>> 0);
    this.send(device, registerRequest(device.endpoint, device.registerMid, token));
  }

  /** One datagram from the server to `device`. */
  receive(device: LeanDevice, data: Buffer): void {
    const msg = raw.parse(data);
    if (!msg) return;
    if (msg.type === raw.ACK) {
      const pending = device.pending;
      if (pending !== undefined && pending.mid === msg.mid) {
        device.pending = undefined;
        pending.resolve(msg);
        return;
      }
      // the answer to our Register (piggybacked)
      if (msg.mid === device.registerMid && msg.code === raw.code('2.01') && device.location === undefined) {
        if (!this.stateless) device.location = msg.locationPath;
        device.registerMid = -1;
        this.registered++;
        for (const l of this.onRegistered) l(device);
      }
      return;
    }
    if (msg.type !== raw.CON && msg.type !== raw.NON) return;
    if (msg.code === 0) return; // ping
    this.requests++;
    const format = msg.accept ?? ContentFormat.SENML_JSON;
    const payload = this.answers.get(format);
    const type = msg.type === raw.CON ? raw.ACK : raw.NON;
    const mid = msg.type === raw.CON ? msg.mid : (device.mid = (device.mid + 1) & 0xffff);
    if (!payload) {
      this.send(device, raw.encode(type, CODE_NOT_ACCEPTABLE, mid, Buffer.from(msg.token), []));
      return;
    }
    const options: raw.RawOption[] = [{ number: raw.OPT_CONTENT_FORMAT, value: raw.uintBytes(format) }];
    if (msg.observe === 0) {
      if (!this.stateless) {
        device.observeToken = Buffer.from(msg.token);
        device.observeFormat = format;
      }
      options.push({ number: raw.OPT_OBSERVE, value: raw.uintBytes(device.seq++) });
    } else if (msg.observe === 1 && device.observeToken?.equals(msg.token)) {
      device.observeToken = undefined;
    }
    this.send(device, raw.encode(type, CODE_CONTENT, mid, Buffer.from(msg.token), options, payload));
  }

  /** Sends a CON request built by `build(mid)`; resolves with the ACK (or undefined after `timeoutMs`). */
  exchange(device: LeanDevice, build: (mid: number) => Buffer, timeoutMs = 2000): Promise<raw.RawMessage | undefined> {
    const mid = (device.mid = (device.mid + 1) & 0xffff);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        if (device.pending?.mid === mid) device.pending = undefined;
        resolve(undefined);
      }, timeoutMs);
      device.pending = {
        mid,
        resolve: (msg) => {
          clearTimeout(timer);
          resolve(msg);
        },
      };
      this.send(device, build(mid));
    });
  }

  /** A NON notification from `device` (when it is observed); false when it is not. */
  notify(device: LeanDevice): boolean {
    if (device.observeToken === undefined) return false;
    const format = device.observeFormat ?? ContentFormat.SENML_JSON;
    device.mid = (device.mid + 1) & 0xffff;
    const data = raw.encode(
      raw.NON,
      CODE_CONTENT,
      device.mid,
      device.observeToken,
      [
        { number: raw.OPT_CONTENT_FORMAT, value: raw.uintBytes(format) },
        { number: raw.OPT_OBSERVE, value: raw.uintBytes(device.seq++ & 0xffffff) },
      ],
      this.answers.get(format),
    );
    this.notificationsSent++;
    this.send(device, data);
    return true;
  }
}
