/**
 * A device written with raw datagrams (coap-packet), to send notifications the way a misbehaving device does: as
 * many NON notifications as a test asks for, as fast as it asks. It registers, answers Observe and Write-Attributes,
 * and records the RSTs and cancel requests the server sends.
 */
import dgram from 'node:dgram';
import { generate, parse } from 'coap-packet';
import type { ParsedPacket } from 'coap-packet';

const TEXT = 0;

export class NotifyingDevice {
  private socket = dgram.createSocket('udp4');
  /** The Location-Path of the registration (from the 2.01). */
  private location: string[] = [];
  private mid = 1;
  private sequence = 2;
  private observeToken?: Buffer;
  private readonly waiting = new Map<number, (packet: ParsedPacket) => void>();
  /** RSTs from the server (a passive cancel answers a notification with one). */
  resets = 0;
  /** GET/FETCH with Observe=1 (an active cancel). */
  cancels = 0;
  /** Queries of the Write-Attributes requests received. */
  readonly attributeWrites: string[][] = [];

  constructor(
    readonly endpoint: string,
    private readonly serverPort: number,
  ) {}

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.socket.bind(0, '127.0.0.1', () => resolve()));
    this.socket.on('message', (message) => this.onMessage(parse(message)));
  }

  /** Register (CON POST /rd); resolves on the 2.01. */
  async register(links = '</1/0>,</3/0>,</3303/0>'): Promise<void> {
    const options = [
      { name: 'Uri-Path', value: Buffer.from('rd') },
      { name: 'Content-Format', value: uint(40) },
      { name: 'Uri-Query', value: Buffer.from(`ep=${this.endpoint}`) },
      { name: 'Uri-Query', value: Buffer.from('lt=300') },
      { name: 'Uri-Query', value: Buffer.from('lwm2m=1.1') },
    ];
    const response = await this.post('register', [1, 2, 3, 4], options, Buffer.from(links), '2.01');
    this.location = response.options
      .filter((option) => option.name === 'Location-Path')
      .map((option) => option.value.toString());
  }

  /** Update (CON POST /rd/<id>, no parameters); resolves on the 2.04. */
  async update(): Promise<void> {
    const options = this.location.map((segment) => ({ name: 'Uri-Path', value: Buffer.from(segment) }));
    await this.post('update', [5, 6, 7, 8], options, Buffer.alloc(0), '2.04');
  }

  /** A CON POST to the server; resolves on its answer, which must carry `expected`. */
  private async post(
    what: string,
    token: number[],
    options: { name: string; value: Buffer }[],
    payload: Buffer,
    expected: string,
  ): Promise<ParsedPacket> {
    const mid = this.nextMid();
    const answer = new Promise<ParsedPacket>((resolve) => this.waiting.set(mid, resolve));
    this.send({ confirmable: true, messageId: mid, token: Buffer.from(token), code: '0.02', options, payload });
    const response = await answer;
    if (response.code !== expected) throw new Error(`${what} answered ${response.code}`);
    return response;
  }

  /** A NAT re-mapping: from now on the device talks from a new socket (a new port). */
  async rebind(): Promise<void> {
    await this.close();
    this.socket = dgram.createSocket('udp4');
    await this.start();
  }

  get port(): number {
    return this.socket.address().port;
  }

  /** One NON notification of the observed resource, with the next Observe number. */
  notify(value: number | string): void {
    if (!this.observeToken) throw new Error('nothing observed yet');
    this.send({
      confirmable: false,
      ack: false,
      messageId: this.nextMid(),
      token: this.observeToken,
      code: '2.05',
      options: [
        { name: 'Observe', value: uint(this.sequence++) },
        { name: 'Content-Format', value: uint(TEXT) },
      ],
      payload: Buffer.from(String(value)),
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }

  private onMessage(packet: ParsedPacket): void {
    if (packet.reset) {
      this.resets++;
      return;
    }
    if (packet.ack) {
      this.waiting.get(packet.messageId)?.(packet);
      this.waiting.delete(packet.messageId);
      return;
    }
    const observe = packet.options.find((option) => option.name === 'Observe');
    const query = packet.options
      .filter((option) => option.name === 'Uri-Query')
      .map((option) => option.value.toString());
    if (packet.code === '0.01' && observe !== undefined && observe.value.length === 0) {
      // Observe=0 (an empty uint): the observation starts; the first value rides on the ACK.
      this.observeToken = Buffer.from(packet.token);
      this.reply(packet, '2.05', [{ name: 'Observe', value: uint(this.sequence++) }], '0');
      return;
    }
    if ((packet.code === '0.01' || packet.code === '0.05') && observe !== undefined) {
      this.cancels++;
      this.reply(packet, '2.05', [], '0');
      return;
    }
    if (packet.code === '0.03' && query.length > 0) {
      this.attributeWrites.push(query);
      this.reply(packet, '2.04', [], undefined);
      return;
    }
    this.reply(packet, '4.04', [], undefined);
  }

  private reply(
    request: ParsedPacket,
    code: string,
    options: { name: string; value: Buffer }[],
    payload: string | undefined,
  ): void {
    this.send({
      ack: true,
      messageId: request.messageId,
      token: request.token,
      code,
      options: payload === undefined ? options : [...options, { name: 'Content-Format', value: uint(TEXT) }],
      payload: payload === undefined ? Buffer.alloc(0) : Buffer.from(payload),
    });
  }

  private send(packet: Parameters<typeof generate>[0]): void {
    this.socket.send(generate(packet), this.serverPort, '127.0.0.1');
  }

  private nextMid(): number {
    this.mid = (this.mid + 1) & 0xffff;
    return this.mid;
  }
}

/** A CoAP uint option value: big-endian without leading zero bytes (0 is empty). */
function uint(value: number): Buffer {
  const bytes: number[] = [];
  for (let rest = value; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  return Buffer.from(bytes);
}
