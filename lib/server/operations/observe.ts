/**
 * Information Reporting operations: Write-Attributes (with who last wrote them on a path, LwM2M 1.0/1.1), Observe
 * (shared by its owners, attributes in the request for 1.2), Cancel Observation, and the request that cancels a
 * stored observation on the device.
 */
import type { IncomingResponse, OutgoingRequest } from '../../coap/types';
import { encodePaths } from '../../content';
import { ContentFormat } from '../../content/types';
import type { LwM2mPath } from '../../model/path';
import { toPlain } from '../../model/values';
import type { NotificationAttributes } from '../attributes';
import { AttributeError, attributesToQuery } from '../attributes';
import { formatsToTry, negotiate } from '../content-negotiation';
import type { FormatAttempts } from '../content-negotiation';
import { Lwm2mRequestError } from '../errors';
import type { ObservationService } from '../observation-service';
import type { Registration } from '../registration';
import type { StoredObservation } from '../stores';
import type { OperationContext } from './context';
import { findTarget } from './context';
import type { DeviceOperations } from './device';
import { badRequest, expectSuccess, parsePath } from './request-errors';
import { result, segmentsOf } from './requests';
import type { ObserveOptions, ObserveResult, RequestOptions, WriteAttributesResult } from './results';

/** What an Observe attempt gives back: the answer, and the observation when the device accepted it. */
export interface ObserveOutcome {
  response: IncomingResponse;
  observation?: StoredObservation;
}

/** The steps of an Observe whose caller makes the attempt (`subject`): the outcome and its format back. */
export const OUTCOME_AND_FORMAT: FormatAttempts<
  (format: number) => Promise<ObserveOutcome>,
  ObserveOutcome,
  { outcome: ObserveOutcome; format: number }
> = {
  attempt: (format, attempt) => attempt(format),
  response: (outcome) => outcome.response,
  settle: (outcome, format) => ({ outcome, format }),
};

export class ObserveOperations {
  /** Who last wrote attributes on (registration id, path), to tell observers apart (LwM2M 1.0/1.1). */
  private readonly attributeWriters = new Map<string, { owner: string; attributes: string[] }>();

  constructor(
    private readonly context: OperationContext,
    private readonly device: DeviceOperations,
    private readonly observations: ObservationService,
  ) {}

  async writeAttributes(
    endpointName: string,
    pathText: string,
    attributes: NotificationAttributes,
    options: RequestOptions & { owner?: string } = {},
  ): Promise<WriteAttributesResult> {
    const { registration, path } = await findTarget(this.context.registrations, endpointName, pathText);
    if (path.isRoot())
      throw badRequest('Write-Attributes needs an object, instance or resource path', registration, path);
    if (path.isResourceInstance() && registration.lwm2mVersion === '1.0') {
      throw badRequest('LwM2M 1.0 has no attributes on resource instances', registration, path);
    }
    const query = this.attributeQuery(registration, path, attributes);
    const started = Date.now();
    const response = await this.device.exchange(registration, path, 'Write-Attributes', '2.04', {
      method: 'PUT',
      query,
      timeoutMs: options.timeoutMs,
    });
    if (attributes.pmin !== undefined)
      this.observations.setMinPeriod(registration.id, [path], attributes.pmin ?? undefined);
    const key = `${registration.id}|${path}`;
    const owner = options.owner ?? 'api';
    const previous = this.attributeWriters.get(key);
    this.attributeWriters.set(key, { owner, attributes: query });
    const replaced =
      previous && previous.owner !== owner && previous.attributes.join('&') !== query.join('&') ? previous : undefined;
    return { ...result(registration, path, response, started), attributes: query, ...(replaced ? { replaced } : {}) };
  }

  /** Forgets who wrote attributes on the paths of a registration that ended or was replaced. */
  forgetAttributes(registrationId: string): void {
    for (const key of this.attributeWriters.keys())
      if (key.startsWith(registrationId + '|')) this.attributeWriters.delete(key);
  }

  /**
   * Observe a path. Several callers observing the same path on one device share one device
   * observation; each is an owner, and the device is told to stop only when the last one cancels.
   */
  async observe(endpointName: string, pathText: string, options: ObserveOptions = {}): Promise<ObserveResult> {
    const { registration, path } = await findTarget(this.context.registrations, endpointName, pathText);
    const started = Date.now();
    const owner = options.owner ?? 'api';
    const attributes =
      options.attributes && Object.keys(options.attributes).length > 0 ? options.attributes : undefined;
    const inRequest = attributes !== undefined && registration.lwm2mVersion === '1.2';
    const query = inRequest ? this.attributeQuery(registration, path, attributes) : undefined;
    let attributesReplaced: ObserveResult['attributesReplaced'];
    if (attributes && !inRequest) {
      const written = await this.writeAttributes(endpointName, pathText, attributes, {
        owner,
        timeoutMs: options.timeoutMs,
      });
      attributesReplaced = written.replaced;
    }
    const existing = await this.observations.join(registration, [path], owner);
    if (existing) {
      // The device keeps notifying; a fresh Read gives the caller the current value right away.
      const current = await this.device.read(endpointName, pathText, options);
      return {
        ...current,
        observationId: existing.id,
        joined: true,
        ...(attributesReplaced ? { attributesReplaced } : {}),
        ...(inRequest ? { attributesNotApplied: true } : {}),
      };
    }
    const codec = this.context.codec;
    const formats = formatsToTry(registration, path, codec.resourceDefinition(path), options.format, 'Observe');
    const { outcome, format } = await negotiate(
      formats,
      async (accept: number) => {
        // Observe=0 and every field in one literal: this object is kept for the life of the observation,
        // and one built by spreading would carry an extra out-of-object property array.
        const pathSegments = segmentsOf(path);
        const timeoutMs = options.timeoutMs;
        const request: OutgoingRequest = query
          ? { method: 'GET', pathSegments, query, accept, timeoutMs, observe: 0 }
          : { method: 'GET', pathSegments, accept, timeoutMs, observe: 0 };
        const pmin = attributes?.pmin ?? undefined; // notifications faster than it are coalesced
        return this.observations.start(registration, [path], owner, request, pmin);
      },
      OUTCOME_AND_FORMAT,
    );
    const response = outcome.response;
    expectSuccess(response, 'Observe', registration.endpoint, path, ['2.05']);
    const contentFormat = response.contentFormat ?? format;
    const node = codec.decodeResponse(response.payload, contentFormat, path, registration.endpoint, 'Observe');
    if (!outcome.observation) {
      throw new Lwm2mRequestError(
        `Observe ${path} on ${registration.endpoint}: the device answered without Observe, so it will not notify`,
        '2.05',
        registration.endpoint,
        path.toString(),
      );
    }
    return {
      endpoint: registration.endpoint,
      path: path.toString(),
      code: response.code,
      contentFormat,
      rttMs: Date.now() - started,
      node,
      value: toPlain(node, path, this.context.model),
      observationId: outcome.observation.id,
      joined: false,
      ...(attributesReplaced ? { attributesReplaced } : {}),
    };
  }

  /**
   * Lets go of an observation for `owner` (every owner when omitted). When nobody holds it any more,
   * the device is told (active cancel; passive when the device does not answer).
   */
  async cancelObservation(endpointName: string, pathText: string, owner?: string): Promise<boolean> {
    const registration = await this.context.registrations.getByEndpoint(endpointName);
    if (!registration) return false;
    const paths = String(pathText)
      .split(',')
      .map((item) => parsePath(item, endpointName));
    return this.observations.cancel(registration, paths, owner);
  }

  /** Forgets an owner on every observation it holds (a node removed from the flow). */
  async releaseOwner(owner: string): Promise<void> {
    await this.observations.releaseOwner(owner, async (observation) => {
      return this.context.registrations.getById(observation.registrationId);
    });
  }

  /** Attributes checked against the device's version and the target, as Uri-Query items. */
  private attributeQuery(registration: Registration, path: LwM2mPath, attributes: NotificationAttributes): string[] {
    try {
      return attributesToQuery(
        attributes,
        registration.lwm2mVersion,
        path.level,
        this.context.codec.resourceDefinition(path),
      );
    } catch (err) {
      if (err instanceof AttributeError) throw badRequest(err.message, registration, path);
      throw err;
    }
  }
}

/** The request that cancels a stored observation on the device: GET with Observe=1, or FETCH for a composite one. */
export function cancelRequest(stored: StoredObservation, paths: LwM2mPath[]): OutgoingRequest {
  return paths.length === 1
    ? {
        method: 'GET',
        pathSegments: segmentsOf(paths[0]),
        observe: 1,
        token: Buffer.from(stored.token, 'hex'),
        accept: stored.contentFormat,
      }
    : {
        method: 'FETCH',
        pathSegments: [],
        observe: 1,
        token: Buffer.from(stored.token, 'hex'),
        accept: stored.contentFormat,
        // LwM2M CBOR carries no path list: a 1.2 device asked for it got an ETCH CBOR list.
        ...(stored.contentFormat === ContentFormat.LWM2M_CBOR
          ? {
              contentFormat: ContentFormat.SENML_ETCH_CBOR,
              payload: encodePaths(paths, ContentFormat.SENML_ETCH_CBOR),
            }
          : {
              contentFormat: stored.contentFormat,
              payload: encodePaths(paths, stored.contentFormat ?? ContentFormat.SENML_CBOR),
            }),
      };
}
