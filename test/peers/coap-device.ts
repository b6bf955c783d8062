/**
 * A device we did not write: node-coap's server answers GET/PUT/POST/DELETE (with Observe) and its
 * agent sends Register/Update/De-register, both on ONE socket, as a real device behind NAT does.
 */
import * as coap from 'coap';
import dgram from 'node:dgram';

const optionConverter = require('coap/dist/lib/option_converter') as { toBinary(name: string, value: unknown): Buffer };
import type { AddressInfo } from 'node:net';

export interface DeviceResource {
  contentFormat: number;
  payload: Buffer | string;
}

export interface RecordedRequest {
  method: string;
  url: string;
  contentFormat?: number;
  accept?: number;
  payload: Buffer;
  observe?: number;
}

type Handler = (
  request: RecordedRequest,
) => { code: string; contentFormat?: number; payload?: Buffer | string } | undefined;

export class CoapDevice {
  readonly requests: RecordedRequest[] = [];
  readonly resources = new Map<string, DeviceResource>();
  handler?: Handler;
  /** Requests for which this says true are recorded and never answered (a device that went silent). */
  dropIf?: (request: RecordedRequest) => boolean;
  private readonly held: coap.OutgoingMessage[] = [];
  private readonly socket = dgram.createSocket('udp4');
  private server!: coap.Server;
  private agent!: coap.Agent;
  private readonly observers = new Map<string, coap.OutgoingMessage[]>();
  location?: string;

  constructor(
    readonly endpoint: string,
    private readonly serverPort: number,
  ) {}

  get port(): number {
    return (this.socket.address() as AddressInfo).port;
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.socket.bind(0, '127.0.0.1', () => resolve()));
    this.server = coap.createServer({ type: 'udp4' });
    this.server.on('request', (req: coap.IncomingMessage, res: coap.OutgoingMessage) => this.answer(req, res));
    await new Promise<void>((resolve) => this.server.listen(this.socket as never, () => resolve()));
    this.agent = new coap.Agent({ socket: this.socket as never });
  }

  private answer(req: coap.IncomingMessage, res: coap.OutgoingMessage): void {
    const url = (req.url ?? '').split('?')[0];
    const recorded: RecordedRequest = {
      method: req.method,
      url: req.url ?? '',
      contentFormat: numericOption(req, 'Content-Format'),
      accept: numericOption(req, 'Accept'),
      payload: req.payload,
      observe: req.headers.Observe as number | undefined,
    };
    this.requests.push(recorded);
    if (this.dropIf?.(recorded)) {
      this.held.push(res);
      return;
    }
    const custom = this.handler?.(recorded);
    if (custom) {
      res.code = custom.code;
      // An Observe request gets node-coap's observe stream, which sends `statusCode` (2.05 unless set).
      (res as unknown as { statusCode: string }).statusCode = custom.code;
      if (custom.contentFormat !== undefined) res.setOption('Content-Format', custom.contentFormat);
      if (req.method === 'FETCH' && req.headers.Observe === 0 && custom.code.startsWith('2.')) {
        // Observe-Composite: keep the response open; notifyComposite() writes the next notifications.
        // (An error answer observes nothing: it is ended below, with its own code.)
        this.keepObserver('FETCH', res);
        res.write(custom.payload ?? '');
        return;
      }
      res.end(custom.payload ?? '');
      return;
    }
    const resource = this.resources.get(url);
    if (req.method === 'GET') {
      if (!resource) {
        res.code = '4.04';
        res.end();
        return;
      }
      res.code = '2.05';
      res.setOption('Content-Format', resource.contentFormat);
      if (req.headers.Observe === 0) {
        this.keepObserver(url, res);
        res.write(resource.payload);
        return;
      }
      res.end(resource.payload);
      return;
    }
    if (req.method === 'PUT' || req.method === 'POST') {
      res.code = '2.04';
      res.end();
      return;
    }
    if (req.method === 'DELETE') {
      res.code = '2.02';
      res.end();
      return;
    }
    res.code = '4.05';
    res.end();
  }

  private keepObserver(key: string, res: coap.OutgoingMessage): void {
    const list = this.observers.get(key) ?? [];
    list.push(res);
    this.observers.set(key, list);
    res.on('finish', () =>
      this.observers.set(
        key,
        (this.observers.get(key) ?? []).filter((item) => item !== res),
      ),
    );
  }

  /** Sends the next notification of an Observe-Composite (FETCH) to its observers. */
  notifyComposite(payload: Buffer | string): number {
    const list = this.observers.get('FETCH') ?? [];
    for (const res of list) res.write(payload);
    return list.length;
  }

  /** Changes a value and notifies observers of that path. */
  notify(url: string, payload: Buffer | string, contentFormat?: number): number {
    const resource = this.resources.get(url);
    this.resources.set(url, { contentFormat: contentFormat ?? resource?.contentFormat ?? 0, payload });
    const list = this.observers.get(url) ?? [];
    for (const res of list) res.write(payload);
    return list.length;
  }

  observerCount(url: string): number {
    return (this.observers.get(url) ?? []).length;
  }

  private send(
    method: 'POST' | 'DELETE',
    pathname: string,
    query: string,
    payload?: string | Buffer,
    contentFormat: string | number = 'application/link-format',
  ): Promise<{ code: string; location?: string; diagnostic: string }> {
    return new Promise((resolve, reject) => {
      const request = coap.request({
        hostname: '127.0.0.1',
        port: this.serverPort,
        method,
        pathname,
        query,
        agent: this.agent,
        confirmable: true,
      } as never);
      if (payload !== undefined) {
        request.setOption('Content-Format', contentFormat as never);
        request.write(payload);
      }
      request.on('response', (res: coap.IncomingMessage) => {
        // node-coap folds repeated options into headers; the raw packet keeps every Location-Path.
        const locationPaths = (res._packet.options ?? [])
          .filter((option) => option.name === 'Location-Path')
          .map((option) => Buffer.from(option.value as Buffer).toString());
        resolve({
          code: res.code,
          location: locationPaths.length ? '/' + locationPaths.join('/') : undefined,
          diagnostic: Buffer.from(res.payload ?? []).toString('utf8'),
        });
      });
      request.on('error', reject);
      request.end();
    });
  }

  async register(query = 'lt=60&lwm2m=1.1&b=U', links = '</1/0>,</3/0>,</3303/0>'): Promise<string> {
    const answer = await this.send('POST', '/rd', `ep=${this.endpoint}&${query}`, links);
    if (answer.code !== '2.01') throw new Error(`register answered ${answer.code}`);
    this.location = answer.location;
    return answer.code;
  }

  /** A Register with exactly this query (no `ep` added): the code and diagnostic, whatever they are. */
  async tryRegister(
    query: string,
    links = '</1/0>,</3/0>,</3303/0>',
  ): Promise<{ code: string; location?: string; diagnostic: string }> {
    const answer = await this.send('POST', '/rd', query, links);
    if (answer.code === '2.01') this.location = answer.location;
    return answer;
  }

  async update(query = '', links?: string): Promise<string> {
    if (!this.location) throw new Error('not registered');
    return (await this.send('POST', this.location, query, links)).code;
  }

  /** LwM2M 1.1 Send: POST /dp with SenML. */
  async sendData(payload: string | Buffer, contentFormat: number): Promise<string> {
    return (await this.send('POST', '/dp', '', payload, contentFormat)).code;
  }

  async deregister(): Promise<string> {
    if (!this.location) throw new Error('not registered');
    return (await this.send('DELETE', this.location, '')).code;
  }

  /** LwM2M Bootstrap-Request: POST /bs?ep=..(&pct=..); `query` replaces the default `ep=<endpoint>`. */
  async bootstrapRequest(query = `ep=${this.endpoint}`): Promise<{ code: string; diagnostic: string }> {
    const answer = await this.send('POST', '/bs', query);
    return { code: answer.code, diagnostic: answer.diagnostic };
  }

  /** LwM2M 1.2 Bootstrap-Pack-Request: GET /bspack?ep=.. with Accept. */
  bootstrapPack(
    accept?: number,
    query = `ep=${this.endpoint}`,
  ): Promise<{ code: string; contentFormat?: number; payload: Buffer }> {
    return new Promise((resolve, reject) => {
      const request = coap.request({
        hostname: '127.0.0.1',
        port: this.serverPort,
        method: 'GET',
        pathname: '/bspack',
        query,
        agent: this.agent,
        confirmable: true,
      } as never);
      if (accept !== undefined) request.setOption('Accept', accept as never);
      request.on('response', (res: coap.IncomingMessage) =>
        resolve({
          code: res.code,
          contentFormat: numericOption(res, 'Content-Format'),
          payload: Buffer.from(res.payload ?? []),
        }),
      );
      request.on('error', reject);
      request.end();
    });
  }

  async stop(): Promise<void> {
    // Never answered: dropped with the socket (and node-coap's pending empty ACK with them).
    for (const res of this.held.splice(0)) clearTimeout((res as unknown as { _ackTimer?: NodeJS.Timeout })._ackTimer);
    for (const list of this.observers.values()) for (const res of list) res.end();
    this.observers.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }
}

/** node-coap turns known formats into names (in place); turn them back into the number. */
function numericOption(req: coap.IncomingMessage, name: string): number | undefined {
  const option = (req._packet.options ?? []).find((item) => item.name === name);
  if (!option) return undefined;
  if (typeof option.value === 'number') return option.value;
  const bytes = Buffer.isBuffer(option.value) ? option.value : optionConverter.toBinary(name, option.value);
  return bytes.length === 0 ? 0 : bytes.readUIntBE(0, bytes.length);
}
