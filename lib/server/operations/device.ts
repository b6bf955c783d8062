/**
 * The single-path device operations (LwM2M Device Management): Read, Discover, Write, Execute, Create and
 * Delete, each one validated against the device's version and the target, negotiated, encoded and decoded.
 */
import type { IncomingResponse, OutgoingRequest } from '../../coap/types';
import { checkLinkAttributes, parseLinkFormat } from '../../content/link-format';
import type { Link } from '../../content/link-format';
import { ContentFormat } from '../../content/types';
import type { LwM2mPath } from '../../model/path';
import type { LwM2mNode } from '../../model/types';
import { toPlain } from '../../model/values';
import { isSupportedFormat } from '../../content';
import {
  carriesEmptyInstance,
  emptyInstanceFormats,
  formatsToTry,
  memoCandidateFormats,
  negotiate,
} from '../content-negotiation';
import type { FormatAttempts } from '../content-negotiation';
import type { Registration } from '../registration';
import { checkWriteSize } from '../write-limit';
import type { OperationContext } from './context';
import { findTarget, targetPath } from './context';
import { badRequest, expectSuccess, invalidResponse, registeredOrThrow } from './request-errors';
import { executeArguments, result, segmentsOf, stripRoot } from './requests';
import type {
  CreateResult,
  DiscoverResult,
  OperationResult,
  ReadResult,
  RequestOptions,
  WriteLimitOptions,
  WriteOptions,
} from './results';

/** One Read in progress: what its format attempts share. */
interface ReadCall {
  readonly context: OperationContext;
  readonly registration: Registration;
  readonly path: LwM2mPath;
  readonly pathSegments: string[];
  readonly timeoutMs: number | undefined;
  readonly started: number;
}

/** A Read's steps, shared by every Read: GET in the format, and the answer decoded into the result. */
const READ_ATTEMPTS: FormatAttempts<ReadCall, IncomingResponse, ReadResult> = {
  attempt: (accept, call) =>
    call.context.sender.send(call.registration, {
      method: 'GET',
      pathSegments: call.pathSegments,
      accept,
      timeoutMs: call.timeoutMs,
    }),
  response: (response) => response,
  settle: (response, format, call) => {
    const { registration, path } = call;
    expectSuccess(response, 'Read', registration.endpoint, path, ['2.05']);
    const contentFormat = response.contentFormat ?? format;
    const node = call.context.codec.decodeResponse(
      response.payload,
      contentFormat,
      path,
      registration.endpoint,
      'Read',
    );
    return {
      endpoint: registration.endpoint,
      path: path.toString(),
      code: response.code,
      contentFormat,
      rttMs: Date.now() - call.started,
      node,
      value: toPlain(node, path, call.context.model),
    };
  },
};

/**
 * The steps of an operation whose caller makes the attempt (`subject`: a request sent in the format) and takes the
 * answer and its format back (Write, Create).
 */
export const RESPONSE_AND_FORMAT: FormatAttempts<
  (format: number) => Promise<IncomingResponse>,
  IncomingResponse,
  { response: IncomingResponse; format: number }
> = {
  attempt: (format, attempt) => attempt(format),
  response: (response) => response,
  settle: (response, format) => ({ response, format }),
};

export class DeviceOperations {
  constructor(private readonly context: OperationContext) {}

  /**
   * Not an async function: the hot path of a flow. The registration is found without a promise (memory store),
   * the candidate formats are memoised, and the one promise of the call is the format negotiation's.
   */
  read(endpointName: string, pathText: string, options: RequestOptions = {}): Promise<ReadResult> {
    try {
      const path = targetPath(endpointName, pathText);
      const store = this.context.registrations;
      if (store.getByEndpointSync === undefined) {
        return store
          .getByEndpoint(endpointName)
          .then((registration) => this.readFrom(registeredOrThrow(registration, endpointName, path), path, options));
      }
      return this.readFrom(registeredOrThrow(store.getByEndpointSync(endpointName), endpointName, path), path, options);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private readFrom(registration: Registration, path: LwM2mPath, options: RequestOptions): Promise<ReadResult> {
    if (path.isRoot()) throw badRequest('Read needs an object, instance or resource path, not /', registration, path);
    if (path.isResourceInstance() && registration.lwm2mVersion === '1.0') {
      throw badRequest('reading a resource instance is LwM2M 1.1: this device registered as 1.0', registration, path);
    }
    const context = this.context;
    const formats = formatsToTry(registration, path, context.codec.resourceDefinition(path), options.format, 'Read');
    const call: ReadCall = {
      context,
      registration,
      path,
      pathSegments: segmentsOf(path),
      timeoutMs: options.timeoutMs,
      started: Date.now(),
    };
    return negotiate(formats, call, READ_ATTEMPTS);
  }

  /**
   * Discover. `depth` (LwM2M 1.2: 0 = the target only, 1 = one level down, ... 3 = resource instances)
   * limits how far the device lists; it is refused for 1.0/1.1 devices, which do not know it.
   */
  async discover(
    endpointName: string,
    pathText: string,
    options: RequestOptions & { depth?: number } = {},
  ): Promise<DiscoverResult> {
    const { registration, path } = await findTarget(this.context.registrations, endpointName, pathText);
    if (path.isRoot() || path.isResourceInstance()) {
      throw badRequest(`Discover needs an object, instance or resource path, not ${path}`, registration, path);
    }
    const depth = options.depth;
    if (depth !== undefined) {
      if (registration.lwm2mVersion !== '1.2') throw badRequest('Discover depth is LwM2M 1.2', registration, path);
      if (!Number.isInteger(depth) || depth < 0 || depth > 3)
        throw badRequest(`depth must be 0 to 3, got ${depth}`, registration, path);
    }
    const started = Date.now();
    const response = await this.exchange(registration, path, 'Discover', '2.05', {
      method: 'GET',
      accept: ContentFormat.LINK_FORMAT,
      ...(depth !== undefined ? { query: [`depth=${depth}`] } : {}),
      timeoutMs: options.timeoutMs,
    });
    let links: Link[];
    try {
      links = stripRoot(parseLinkFormat(response.payload.toString('utf8')), registration.rootPath);
      for (const link of links) checkLinkAttributes(link); // dim and ssid in range, else an error naming the link
    } catch (err) {
      throw invalidResponse(err, 'Discover', registration.endpoint, path);
    }
    return {
      endpoint: registration.endpoint,
      path: path.toString(),
      code: response.code,
      contentFormat: ContentFormat.LINK_FORMAT,
      rttMs: Date.now() - started,
      links,
    };
  }

  /** Write (replace with PUT, or partial update with POST). `value` is a msg-shaped value or a node. */
  async write(
    endpointName: string,
    pathText: string,
    value: unknown,
    options: WriteOptions = {},
  ): Promise<OperationResult> {
    const { registration, path } = await findTarget(this.context.registrations, endpointName, pathText);
    if (path.isRoot() || path.isObject()) {
      throw badRequest(`Write needs an instance, resource or resource instance path, not ${path}`, registration, path);
    }
    const codec = this.context.codec;
    const mode = options.mode ?? 'replace';
    if (mode === 'update' && !path.isObjectInstance() && !(path.isResource() && codec.isMultiple(path))) {
      throw badRequest('a partial update (POST) applies to an instance or a multiple resource', registration, path);
    }
    const node = codec.toNode(value, path, registration);
    const formats = formatsToTry(registration, path, codec.resourceDefinition(path), options.format, 'Write');
    const started = Date.now();
    const { response, format } = await negotiate(
      formats,
      (contentFormat: number) =>
        this.context.sender.send(registration, {
          method: mode === 'replace' ? 'PUT' : 'POST',
          pathSegments: segmentsOf(path),
          contentFormat,
          payload: this.sized(
            codec.encode(node, contentFormat, path, registration),
            options,
            'Write',
            path,
            registration,
            contentFormat,
          ),
          timeoutMs: options.timeoutMs,
          ...(options.onProgress ? { onProgress: options.onProgress } : {}),
        }),
      RESPONSE_AND_FORMAT,
    );
    expectSuccess(response, 'Write', registration.endpoint, path, ['2.04']);
    return result(registration, path, response, started, format);
  }

  /** Execute with optional arguments: a string as the device expects it (`0='on',1`) or a list/object. */
  async execute(
    endpointName: string,
    pathText: string,
    args?: unknown,
    options: RequestOptions = {},
  ): Promise<OperationResult> {
    const { registration, path } = await findTarget(this.context.registrations, endpointName, pathText);
    if (!path.isResource()) throw badRequest(`Execute needs a resource path, not ${path}`, registration, path);
    const definition = this.context.codec.resourceDefinition(path);
    if (definition && definition.operations !== 'E') {
      throw badRequest(`${definition.name} (${path}) is not executable`, registration, path);
    }
    let payload: Buffer | undefined;
    try {
      const text = executeArguments(args);
      payload = text === '' ? undefined : Buffer.from(text, 'utf8');
    } catch (err) {
      throw badRequest((err as Error).message, registration, path);
    }
    const started = Date.now();
    const response = await this.exchange(registration, path, 'Execute', '2.04', {
      method: 'POST',
      payload,
      contentFormat: payload ? ContentFormat.TEXT : undefined,
      timeoutMs: options.timeoutMs,
    });
    return result(registration, path, response, started);
  }

  /** Create an object instance; `value` holds its resources (keyed by id or name). */
  async create(
    endpointName: string,
    objectPathText: string,
    value: unknown,
    options: RequestOptions & WriteLimitOptions & { instanceId?: number } = {},
  ): Promise<CreateResult> {
    const { registration, path } = await findTarget(this.context.registrations, endpointName, objectPathText);
    if (!path.isObject()) throw badRequest(`Create needs an object path like /3303, not ${path}`, registration, path);
    const codec = this.context.codec;
    const instanceId = options.instanceId;
    const instancePath = path.append(instanceId ?? 0);
    const instanceNode = codec.toNode(value, instancePath, registration);
    // With an id, the payload is the instance itself; without one, the device picks the id.
    const node: LwM2mNode =
      instanceId === undefined || instanceNode.kind !== 'instance'
        ? instanceNode
        : { kind: 'object', id: path.objectId!, instances: new Map([[instanceId, instanceNode]]) };
    const encodePath = instanceId === undefined ? instancePath : path;
    const empty = instanceNode.kind === 'instance' && instanceNode.resources.size === 0;
    const candidates = empty ? this.emptyInstanceCandidates(registration, path, instanceId, options.format) : undefined;
    const formats = formatsToTry(registration, path, undefined, options.format, 'Create', candidates);
    const started = Date.now();
    const { response, format } = await negotiate(
      formats,
      (contentFormat: number) =>
        this.context.sender.send(registration, {
          method: 'POST',
          pathSegments: segmentsOf(path),
          contentFormat,
          payload: this.sized(
            codec.encode(node, contentFormat, encodePath, registration),
            options,
            'Create',
            path,
            registration,
            contentFormat,
          ),
          timeoutMs: options.timeoutMs,
        }),
      RESPONSE_AND_FORMAT,
    );
    expectSuccess(response, 'Create', registration.endpoint, path, ['2.01']);
    const location = response.options
      .filter((option) => option.name === 'Location-Path')
      .map((option) => option.value.toString('utf8'));
    const created =
      location.length > 0
        ? '/' + location.slice(-2).join('/')
        : instanceId !== undefined
          ? path.append(instanceId).toString()
          : undefined;
    return { ...result(registration, path, response, started, format), instancePath: created };
  }

  /** The formats for a Create of an instance with no resources: ones that can carry it (content-negotiation.ts). */
  private emptyInstanceCandidates(
    registration: Registration,
    objectPath: LwM2mPath,
    instanceId: number | undefined,
    forced: number | undefined,
  ): number[] | undefined {
    const withId = instanceId !== undefined;
    const instance = objectPath.append(instanceId ?? 0);
    const refuse = (why: string) =>
      badRequest(
        `cannot create the empty instance ${withId ? instance : `of ${objectPath}`}: ${why}; ` +
          'give it at least one resource, or use a format that carries it',
        registration,
        objectPath,
      );
    if (forced !== undefined) {
      if (!carriesEmptyInstance(forced, withId))
        throw refuse(`content format ${forced} cannot carry it with its id (SenML and OMA JSON cannot)`);
      return undefined;
    }
    const formats = emptyInstanceFormats(
      memoCandidateFormats(registration, objectPath, undefined, isSupportedFormat),
      withId,
    );
    if (formats.length === 0) {
      const announced = registration.supportedContentFormats.join(' ') || 'nothing';
      throw refuse(`the device announced only formats that cannot carry it (ct=${announced}; SenML cannot)`);
    }
    return formats;
  }

  async delete(endpointName: string, pathText: string, options: RequestOptions = {}): Promise<OperationResult> {
    const { registration, path } = await findTarget(this.context.registrations, endpointName, pathText);
    if (!path.isObjectInstance() && !(path.isResourceInstance() && registration.lwm2mVersion === '1.2')) {
      throw badRequest(`Delete needs an instance path like /3303/0, not ${path}`, registration, path);
    }
    const started = Date.now();
    const response = await this.exchange(registration, path, 'Delete', '2.02', {
      method: 'DELETE',
      timeoutMs: options.timeoutMs,
    });
    return result(registration, path, response, started);
  }

  /** One request to the path, failing with the device's code unless it answered with success. */
  async exchange(
    registration: Registration,
    path: LwM2mPath,
    operation: string,
    expected: string,
    request: Omit<OutgoingRequest, 'pathSegments'>,
  ): Promise<IncomingResponse> {
    const response = await this.context.sender.send(registration, { ...request, pathSegments: segmentsOf(path) });
    expectSuccess(response, operation, registration.endpoint, path, [expected]);
    return response;
  }

  /** The payload, when it is within the call's (or the server's) write size limit; 'too-large' otherwise. */
  private sized(
    payload: Buffer,
    options: WriteLimitOptions,
    operation: string,
    path: LwM2mPath,
    registration: Registration,
    format: number,
  ): Buffer {
    const limit = options.maxWriteBytes ?? this.context.limits.maxWriteBytes;
    checkWriteSize(payload, limit, operation, path.toString(), registration.endpoint, format);
    return payload;
  }
}
