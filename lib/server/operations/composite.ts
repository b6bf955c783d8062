/**
 * The composite operations of LwM2M 1.1+: Read-Composite (FETCH), Write-Composite (iPATCH) and Observe-Composite
 * (FETCH with Observe), several paths in one request, in SenML (SenML-ETCH for 1.2) or LwM2M CBOR.
 */
import type { IncomingResponse } from '../../coap/types';
import { encodePatch } from '../../content';
import { LwM2mPath } from '../../model/path';
import type { LwM2mNode } from '../../model/types';
import { compositeFailure } from '../composite-errors';
import { compositeFormats, formatsToTry, negotiate } from '../content-negotiation';
import { Lwm2mRequestError } from '../errors';
import type { ObservationService } from '../observation-service';
import { keyOf, plainByPath } from '../observation-service';
import type { Registration } from '../registration';
import { checkWriteSize } from '../write-limit';
import type { OperationContext } from './context';
import { findTarget } from './context';
import { RESPONSE_AND_FORMAT } from './device';
import { OUTCOME_AND_FORMAT } from './observe';
import { badRequest, expectSuccess, parsePath } from './request-errors';
import { compositeRequestBody, patchFormat, result } from './requests';
import type {
  CompositeObserveResult,
  CompositeReadResult,
  ObserveOptions,
  OperationResult,
  RequestOptions,
  WriteLimitOptions,
} from './results';

export class CompositeOperations {
  constructor(
    private readonly context: OperationContext,
    private readonly observations: ObservationService,
  ) {}

  /** Read-Composite (FETCH): several paths in one request; `values` is keyed by path. */
  async readComposite(
    endpointName: string,
    pathTexts: string[],
    options: RequestOptions = {},
  ): Promise<CompositeReadResult> {
    const { registration, paths, named } = await this.compositeTarget(endpointName, pathTexts, 'Read-Composite');
    const started = Date.now();
    const { response, format } = await negotiate(
      this.formats(registration, paths, options.format),
      (format: number): Promise<IncomingResponse> =>
        this.context.sender
          .send(registration, {
            method: 'FETCH',
            pathSegments: [],
            ...compositeRequestBody(registration, paths, format),
            accept: format,
            timeoutMs: options.timeoutMs,
          })
          .catch((err: unknown) => {
            throw compositeFailure(err, 'Read-Composite', registration.endpoint, named);
          }),
      RESPONSE_AND_FORMAT,
    );
    const target = new LwM2mPath();
    expectSuccess(response, 'Read-Composite', registration.endpoint, named, ['2.05']);
    const nodes = this.context.codec.decodeComposite(
      response.payload,
      response.contentFormat ?? format,
      paths,
      registration.endpoint,
      'Read-Composite',
    );
    return {
      ...result(registration, target, response, started, response.contentFormat ?? format),
      path: keyOf(paths),
      nodes,
      values: plainByPath(nodes, this.context.model),
    };
  }

  /** Write-Composite (iPATCH): `values` keyed by path (`{ "/3303/0/5701": "Cel", "/1/0/3": 60 }`). */
  async writeComposite(
    endpointName: string,
    values: Record<string, unknown>,
    options: RequestOptions & WriteLimitOptions = {},
  ): Promise<OperationResult> {
    if (typeof values !== 'object' || values === null || Array.isArray(values) || Object.keys(values).length === 0) {
      throw new Lwm2mRequestError(
        'Write-Composite needs an object keyed by path, e.g. { "/3303/0/5701": "Cel" }',
        'bad-request',
        endpointName,
      );
    }
    const { registration, paths, named } = await this.compositeTarget(
      endpointName,
      Object.keys(values),
      'Write-Composite',
    );
    const keys = Object.keys(values);
    const nodes = new Map<string, LwM2mNode>();
    // LwM2M 1.2: a path whose value is null deletes that resource instance (SenML-ETCH, RFC 8790 §3.2).
    const deletions: LwM2mPath[] = [];
    paths.forEach((path, index) => {
      if (path.level < 2)
        throw badRequest(`Write-Composite needs instance or resource paths, not ${path}`, registration, path);
      const value = values[keys[index]];
      if (value === null) {
        if (registration.lwm2mVersion !== '1.2' || !path.isResourceInstance()) {
          throw badRequest(`a null value deletes a resource instance, in LwM2M 1.2 only (${path})`, registration, path);
        }
        deletions.push(path);
        return;
      }
      nodes.set(path.toString(), this.context.codec.toNode(value, path, registration));
    });
    const started = Date.now();
    const target = new LwM2mPath();
    const { response, format } = await negotiate(
      this.formats(registration, paths, options.format),
      async (format: number): Promise<IncomingResponse> => {
        let payload: Buffer;
        try {
          payload = encodePatch(nodes, deletions, patchFormat(registration, format), this.context.model);
        } catch (err) {
          throw new Lwm2mRequestError(
            `Write-Composite ${named} on ${registration.endpoint}: cannot encode the values: ${(err as Error).message}`,
            'bad-request',
            registration.endpoint,
            named,
          );
        }
        checkWriteSize(
          payload,
          options.maxWriteBytes ?? this.context.limits.maxWriteBytes,
          'Write-Composite',
          named,
          registration.endpoint,
          patchFormat(registration, format),
        );
        return this.context.sender
          .send(registration, {
            method: 'iPATCH',
            pathSegments: [],
            contentFormat: patchFormat(registration, format),
            payload,
            timeoutMs: options.timeoutMs,
          })
          .catch((err: unknown) => {
            throw compositeFailure(err, 'Write-Composite', registration.endpoint, named);
          });
      },
      RESPONSE_AND_FORMAT,
    );
    expectSuccess(response, 'Write-Composite', registration.endpoint, named, ['2.04']);
    return { ...result(registration, target, response, started, format), path: keyOf(paths) };
  }

  /** Observe-Composite (FETCH with Observe): one notification carries every path's value. */
  async observeComposite(
    endpointName: string,
    pathTexts: string[],
    options: ObserveOptions = {},
  ): Promise<CompositeObserveResult> {
    const { registration, paths, named } = await this.compositeTarget(endpointName, pathTexts, 'Observe-Composite');
    const owner = options.owner ?? 'api';
    const existing = await this.observations.join(registration, paths, owner);
    if (existing) {
      const current = await this.readComposite(endpointName, pathTexts, options);
      return { ...current, observationId: existing.id, joined: true };
    }
    const started = Date.now();
    const { outcome, format } = await negotiate(
      this.formats(registration, paths, options.format),
      (format: number) =>
        this.observations
          .start(registration, paths, owner, {
            method: 'FETCH',
            pathSegments: [],
            ...compositeRequestBody(registration, paths, format),
            accept: format,
            timeoutMs: options.timeoutMs,
          })
          .catch((err: unknown) => {
            throw compositeFailure(err, 'Observe-Composite', registration.endpoint, named);
          }),
      OUTCOME_AND_FORMAT,
    );
    const response = outcome.response;
    const target = new LwM2mPath();
    expectSuccess(response, 'Observe-Composite', registration.endpoint, named, ['2.05']);
    const nodes = this.context.codec.decodeComposite(
      response.payload,
      response.contentFormat ?? format,
      paths,
      registration.endpoint,
      'Observe-Composite',
    );
    if (!outcome.observation) {
      throw new Lwm2mRequestError(
        `Observe-Composite ${named} on ${registration.endpoint}: the device answered without Observe, so it will not notify`,
        '2.05',
        registration.endpoint,
        keyOf(paths),
      );
    }
    return {
      ...result(registration, target, response, started, response.contentFormat ?? format),
      path: keyOf(paths),
      nodes,
      values: plainByPath(nodes, this.context.model),
      observationId: outcome.observation.id,
      joined: false,
    };
  }

  private async compositeTarget(
    endpointName: string,
    pathTexts: string[],
    operation: string,
  ): Promise<{ registration: Registration; paths: LwM2mPath[]; named: string }> {
    if (!Array.isArray(pathTexts) || pathTexts.length === 0) {
      throw new Lwm2mRequestError(`${operation} needs a list of paths`, 'bad-request', endpointName);
    }
    const paths = pathTexts.map((text) => parsePath(text, endpointName));
    const named = keyOf(paths);
    const { registration } = await findTarget(this.context.registrations, endpointName, '/').catch((err: unknown) => {
      throw compositeFailure(err, operation, endpointName, named);
    });
    if (registration.lwm2mVersion === '1.0') {
      throw new Lwm2mRequestError(
        `${operation} is LwM2M 1.1: ${endpointName} registered as 1.0`,
        'bad-request',
        endpointName,
        named,
      );
    }
    return { registration, paths, named };
  }

  /** SenML CBOR or JSON (what the device announced first), moving on when it answers 4.06 or 4.15. */
  private formats(registration: Registration, paths: LwM2mPath[], forced: number | undefined): readonly number[] {
    return formatsToTry(
      registration,
      paths[0],
      undefined,
      undefined,
      'composite',
      compositeFormats(registration, forced),
    );
  }
}
