/**
 * One client-initiated bootstrap of one device: the session state machine.
 *
 * ```
 *  POST /bs?ep=..  (answered 2.04 by the BootstrapServer, which then starts the session)
 *    started ──> discovering ──> reading ──> deleting ──> writing ──> finishing ──> finished
 *       (discover: true) (read: [...], 1.1+)  (each path) (each instance)   POST /bs
 *    any step ──> failed    a 4.xx/5.xx the step cannot live with, a time-out (one request, or the session's
 *                           whole time), the server stopping; Finish 4.06 carries the device's diagnostic
 *    any step ──> aborted   the device sent POST /bs again: this session stops at its next step and a new
 *                           one starts from the beginning (reported as failed, reason 'restarted')
 * ```
 * Steps run one after the other: each waits for the device's answer before the next request. Answers that
 * do not stop a session: a 4.xx to BS-Discover or BS-Read (informational; a warning in the summary), a 4.04
 * to BS-Delete (nothing to delete), a 4.xx to the write of the bootstrap account itself (a device may refuse
 * a second one: skipped with a warning), a 4.15 to a Write in SenML (retried once in TLV, which is kept).
 */
import { Lwm2mError } from '../errors';
import type { IncomingResponse, OutgoingRequest } from '../coap/types';
import { CoapRequestError } from '../coap/types';
import { transportFailureText } from '../server/errors';
import { decodeDiscover, decodeNode, encodeNode, formatName, isLwm2mRootLink, parseLinkFormat } from '../content';
import { ContentFormat } from '../content/types';
import { LwM2mPath } from '../model/path';
import type { ObjectModelLookup } from '../model/types';
import { toPlain } from '../model/values';
import type { BootstrapConfig } from './config';
import type { BootstrapPlan, ProvisionedServer } from './plan';
import { buildPlan } from './plan';

export type BootstrapStep = 'request' | 'discover' | 'read' | 'delete' | 'write' | 'finish' | 'session';

export type SessionState =
  'started' | 'discovering' | 'reading' | 'deleting' | 'writing' | 'finishing' | 'finished' | 'failed' | 'aborted';

/** What `bootstrapFinished` reports (msg shaped: no keys). */
export interface BootstrapSummary {
  servers: ProvisionedServer[];
  bootstrapAccountWritten: boolean;
  /** Paths deleted, in order. */
  deleted: string[];
  /** Paths written, in order. */
  written: string[];
  /** The format of the writes (11542 TLV, 112 SenML CBOR, 110 SenML JSON). */
  contentFormat: number;
  /** The device's LwM2M version when it showed it (pct, BS-Discover), or the configured one. */
  lwm2mVersion?: string;
  /** BS-Discover's links, as the device gave them. */
  discovered?: string;
  /** BS-Read results: path -> msg-shaped value. */
  read?: Record<string, unknown>;
  /** What went wrong without stopping the bootstrap. */
  warnings: string[];
}

export class BootstrapStepError extends Lwm2mError {
  override name = 'BootstrapStepError';
  constructor(
    message: string,
    readonly step: BootstrapStep,
    readonly path?: string,
    /** The device's CoAP code, or 'timeout' / 'reset' / 'closed'. */
    code?: string,
    /** The device's diagnostic payload (text), when it sent one. */
    readonly diagnostic?: string,
  ) {
    super(message, code);
  }
}

export interface SessionOptions {
  endpoint: string;
  config: BootstrapConfig;
  model: ObjectModelLookup;
  /** The content format the device asked for (pct), when it did. */
  preferredFormat?: number;
  /** Hard limit per request (ms); the CoAP endpoint's own limit when absent. */
  requestTimeoutMs?: number;
  send(request: OutgoingRequest): Promise<IncomingResponse>;
}

const SENML = new Set<number>([ContentFormat.SENML_CBOR, ContentFormat.SENML_JSON]);
const WRITE_FORMATS = new Set<number>([ContentFormat.TLV, ContentFormat.SENML_CBOR, ContentFormat.SENML_JSON]);

export class BootstrapSession {
  state: SessionState = 'started';
  /** The step running (or the one that failed). */
  step: BootstrapStep = 'request';
  readonly startedAt = Date.now();
  private abortReason?: string;
  /** Rejects when the session is aborted: a request waiting for the device stops waiting at once. */
  private readonly aborted: Promise<never>;
  private rejectAborted: (err: BootstrapStepError) => void = () => undefined;
  private readonly warnings: string[] = [];
  private lwm2mVersion?: string;
  private format: number;

  constructor(private readonly o: SessionOptions) {
    this.lwm2mVersion = o.config.lwm2mVersion ?? (o.preferredFormat !== undefined ? '1.1' : undefined);
    this.format = this.initialFormat();
    this.aborted = new Promise<never>((_, reject) => (this.rejectAborted = reject));
    this.aborted.catch(() => undefined);
  }

  get endpoint(): string {
    return this.o.endpoint;
  }

  /** Stops the session at its next step (the device asked again, the server stops, the session ran out of time). */
  abort(reason: string): void {
    if (this.state === 'finished' || this.state === 'failed' || this.state === 'aborted') return;
    if (this.abortReason !== undefined) return;
    this.abortReason = reason;
    this.rejectAborted(new BootstrapStepError(reason, this.step, undefined, 'aborted'));
  }

  get done(): boolean {
    return this.state === 'finished' || this.state === 'failed' || this.state === 'aborted';
  }

  /** Runs every step; resolves with the summary or rejects with a BootstrapStepError. */
  async run(): Promise<BootstrapSummary> {
    try {
      const summary = await this.steps();
      this.state = 'finished';
      return summary;
    } catch (err) {
      this.state = this.abortReason !== undefined ? 'aborted' : 'failed';
      if (err instanceof BootstrapStepError) throw err;
      throw new BootstrapStepError(String((err as Error)?.message ?? err), this.step);
    }
  }

  private async steps(): Promise<BootstrapSummary> {
    const { config, model } = this.o;
    let discovered: string | undefined;
    let bootstrapInstanceId: number | undefined;
    if (config.discover) {
      this.enter('discovering', 'discover');
      const response = await this.request({ method: 'GET', pathSegments: [], accept: ContentFormat.LINK_FORMAT }, '/');
      if (response.code === '2.05') {
        discovered = response.payload.toString('utf8');
        bootstrapInstanceId = this.readDiscover(discovered);
      } else this.warn(`BS-Discover / answered ${response.code}${diagnosticOf(response, ': ')}`);
    }

    let read: Record<string, unknown> | undefined;
    if (config.read.length > 0) {
      this.enter('reading', 'read');
      if (this.lwm2mVersion === '1.0') this.warn('BS-Read skipped: the device is LwM2M 1.0');
      else {
        read = {};
        for (const pathText of config.read) {
          const path = LwM2mPath.parse(pathText);
          const accept = this.format === ContentFormat.SENML_JSON ? ContentFormat.SENML_JSON : this.format;
          const response = await this.request({ method: 'GET', pathSegments: path.toSegments(), accept }, pathText);
          if (response.code !== '2.05') {
            this.warn(`BS-Read ${pathText} answered ${response.code}${diagnosticOf(response, ': ')}`);
            continue;
          }
          try {
            const format = response.contentFormat ?? accept;
            read[pathText] = toPlain(decodeNode(response.payload, format, path, model), path, model);
          } catch (err) {
            this.warn(`BS-Read ${pathText}: the answer could not be decoded: ${(err as Error).message}`);
          }
        }
      }
    }

    const plan: BootstrapPlan = buildPlan(config, model, { bootstrapInstanceId });

    this.enter('deleting', 'delete');
    const deleted: string[] = [];
    for (const path of plan.deletes) {
      const text = path.toString();
      const response = await this.request({ method: 'DELETE', pathSegments: path.toSegments() }, text);
      if (response.code === '2.02') deleted.push(text);
      else if (response.code === '4.04') this.warn(`BS-Delete ${text}: nothing to delete (4.04)`);
      else throw this.refused('BS-Delete', text, response);
    }

    this.enter('writing', 'write');
    const written: string[] = [];
    let bootstrapAccountWritten = false;
    for (const write of plan.writes) {
      const text = write.path.toString();
      const response = await this.write(write.path, write.node, text);
      if (response.code === '2.04' || response.code === '2.01') {
        written.push(text);
        if (write.kind === 'bootstrapAccount') bootstrapAccountWritten = true;
      } else if (write.kind === 'bootstrapAccount') {
        // A device may keep its one bootstrap account and refuse a second: it still gets its servers.
        this.warn(
          `the device refused to write the bootstrap account ${text} (${response.code}${diagnosticOf(response, ': ')}): skipped`,
        );
      } else throw this.refused('BS-Write', text, response);
    }

    this.enter('finishing', 'finish');
    const finish = await this.request({ method: 'POST', pathSegments: ['bs'] }, '/bs');
    if (finish.code !== '2.04') {
      if (finish.code === '4.06')
        throw new BootstrapStepError(
          `Bootstrap-Finish: the device found the configuration inconsistent (4.06)${diagnosticOf(finish, ': ')}`,
          'finish',
          '/bs',
          finish.code,
          diagnosticOf(finish) || undefined,
        );
      throw this.refused('Bootstrap-Finish', '/bs', finish);
    }
    return {
      servers: plan.servers,
      bootstrapAccountWritten,
      deleted,
      written,
      contentFormat: this.format,
      ...(this.lwm2mVersion !== undefined ? { lwm2mVersion: this.lwm2mVersion } : {}),
      ...(discovered !== undefined ? { discovered } : {}),
      ...(read !== undefined ? { read } : {}),
      warnings: this.warnings,
    };
  }

  /** BS-Write in the session's format; a 4.15 to SenML is retried once in TLV, which then stays. */
  private async write(
    path: LwM2mPath,
    node: Parameters<typeof encodeNode>[0],
    text: string,
  ): Promise<IncomingResponse> {
    const send = (format: number): Promise<IncomingResponse> => {
      let payload: Buffer;
      try {
        payload = encodeNode(node, format, path, this.o.model);
      } catch (err) {
        throw new BootstrapStepError(
          `BS-Write ${text}: cannot encode as ${formatName(format)}: ${(err as Error).message}`,
          'write',
          text,
        );
      }
      return this.request({ method: 'PUT', pathSegments: path.toSegments(), contentFormat: format, payload }, text);
    };
    const response = await send(this.format);
    if (response.code !== '4.15' || !SENML.has(this.format) || this.o.config.contentFormat !== undefined)
      return response;
    this.warn(`BS-Write ${text}: the device does not take ${formatName(this.format)} (4.15): TLV from here on`);
    this.format = ContentFormat.TLV;
    return send(this.format);
  }

  private initialFormat(): number {
    const { config, preferredFormat } = this.o;
    if (config.contentFormat !== undefined) return config.contentFormat;
    if (config.lwm2mVersion === '1.0') return ContentFormat.TLV;
    if (preferredFormat !== undefined) {
      if (WRITE_FORMATS.has(preferredFormat)) return preferredFormat;
      this.warn(`the device prefers ${formatName(preferredFormat)} (pct), which we do not write: TLV instead`);
    }
    return ContentFormat.TLV;
  }

  /** The device's version (root link `lwm2m=`) and its bootstrap account (a /0/x link without ssid). */
  private readDiscover(answer: string): number | undefined {
    try {
      // LwM2M 1.0 devices (Anjay -V 1.0) put the version first, as a bare attribute with no root link:
      // `lwm2m="1.0",</0>,</0/1>,...`.
      const bare = /^\s*lwm2m="?([0-9.]+)"?\s*,?/.exec(answer);
      const text = bare ? answer.slice(bare[0].length) : answer;
      const root = parseLinkFormat(text).find((link) => isLwm2mRootLink(link) || link.uri === '/');
      const version = bare?.[1] ?? root?.params.lwm2m;
      if (typeof version === 'string') {
        this.lwm2mVersion = version;
        if (version === '1.0' && this.o.config.contentFormat === undefined) this.format = ContentFormat.TLV;
      }
      const links = decodeDiscover(text);
      const account = links.find(
        // Some devices show the bootstrap account with ssid=0 (no DM server has that id).
        (link) => link.path.objectId === 0 && link.path.level === 2 && !link.attributes.ssid,
      );
      return account?.path.instanceId;
    } catch (err) {
      this.warn(`BS-Discover: the answer could not be read: ${(err as Error).message}`);
      return undefined;
    }
  }

  private enter(state: SessionState, step: BootstrapStep): void {
    this.checkAborted();
    this.state = state;
    this.step = step;
  }

  private checkAborted(): void {
    if (this.abortReason !== undefined) throw new BootstrapStepError(this.abortReason, this.step, undefined, 'aborted');
  }

  private async request(request: OutgoingRequest, path: string): Promise<IncomingResponse> {
    this.checkAborted();
    const timeoutMs = this.o.requestTimeoutMs;
    let response: IncomingResponse;
    try {
      // The exchange itself goes on to its end in the CoAP layer; an aborted session stops waiting for it.
      response = await Promise.race([
        this.o.send(timeoutMs !== undefined ? { ...request, timeoutMs } : request),
        this.aborted,
      ]);
    } catch (err) {
      this.checkAborted();
      if (err instanceof CoapRequestError) {
        const reason = transportFailureText(err);
        throw new BootstrapStepError(`${stepName(this.step)} ${path}: ${reason}`, this.step, path, err.reason);
      }
      throw err;
    }
    this.checkAborted();
    return response;
  }

  private refused(operation: string, path: string, response: IncomingResponse): BootstrapStepError {
    return new BootstrapStepError(
      `${operation} ${path} failed: the device answered ${response.code}${diagnosticOf(response, ': ')}`,
      this.step,
      path,
      response.code,
      diagnosticOf(response) || undefined,
    );
  }

  private warn(text: string): void {
    this.warnings.push(text);
  }
}

function stepName(step: BootstrapStep): string {
  switch (step) {
    case 'discover':
      return 'BS-Discover';
    case 'read':
      return 'BS-Read';
    case 'delete':
      return 'BS-Delete';
    case 'write':
      return 'BS-Write';
    case 'finish':
      return 'Bootstrap-Finish';
    default:
      return 'bootstrap';
  }
}

/** The device's diagnostic payload as text (short, printable), with a prefix when there is one. */
function diagnosticOf(response: IncomingResponse, prefix = ''): string {
  if (response.payload.length === 0 || response.payload.length > 512) return '';
  const text = response.payload.toString('utf8').trim();
  return text ? prefix + text : '';
}
