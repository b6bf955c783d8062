/**
 * After a restart: what was left in a FirmwareJobStore are jobs that were running when the server stopped.
 * resumeJobs reports each of them (a FirmwareJobResult with cause 'interrupted') and, when its image can be
 * loaded again (a file path or an http(s) URL with the same SHA-256) or the device pulls a URI of its own,
 * creates the FirmwareJob that continues it (see FirmwareJobOptions.resumeFrom): the device's State decides
 * whether it executes Update, waits for the device to come back, or delivers the package again.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Lwm2mServer } from '../server/lwm2m-server';
import { FirmwareJob } from './job';
import type {
  FirmwareImageRef,
  FirmwareJobCommon,
  FirmwareJobOptions,
  FirmwareJobRecord,
  FirmwareJobResult,
  FirmwareJobStore,
} from './job-types';
import { resultText } from './results';

export interface ResumeJobsOptions {
  /** Create the jobs that continue the resumable records (default true); false: report and remove them all. */
  resume?: boolean;
  /**
   * Loads an image again from its reference: resolves its bytes, or undefined when they are gone. Default: a
   * file path is read, an http(s):// URL fetched.
   */
  loadImage?: (image: FirmwareImageRef) => Promise<Buffer | undefined>;
  /** Options for the resumed jobs over those of their records (timeouts, httpsCertificate, ...). */
  job?: Partial<Omit<FirmwareJobCommon, 'endpoint' | 'id' | 'store' | 'resumeFrom'>>;
}

export interface InterruptedFirmwareJob {
  record: FirmwareJobRecord;
  /** What the interrupted job came to: ok false, cause 'interrupted', phase = the state it had reached. */
  result: FirmwareJobResult;
  /** The job that continues it, not started yet (listen to it, then run()); its record stays in the store. */
  job?: FirmwareJob;
  /** Why it is not continued (its record is removed from the store then). */
  reason?: string;
}

/** Reports the records of `store` as interrupted jobs and creates the jobs that continue them (see above). */
export async function resumeJobs(
  server: Lwm2mServer,
  store: FirmwareJobStore,
  options: ResumeJobsOptions = {},
): Promise<InterruptedFirmwareJob[]> {
  const load = options.loadImage ?? loadImageFromSource;
  const out: InterruptedFirmwareJob[] = [];
  for (const record of await store.list()) {
    const result: FirmwareJobResult = {
      endpoint: record.endpoint,
      ok: false,
      result: record.deviceResult,
      resultText: resultText(record.deviceResult),
      durationMs: Math.max(0, record.updatedAt - record.startedAt),
      cause: 'interrupted',
      phase: record.state,
    };
    if (record.deliveredBy) result.method = record.deliveredBy;
    const entry: InterruptedFirmwareJob = { record, result };
    out.push(entry);
    let delivery: { image: Buffer; imageSource?: string } | { uri: string } | string;
    if (options.resume === false) delivery = 'not resumed (resume: false)';
    else if (record.state === 'cancelling') delivery = 'it was being cancelled';
    else delivery = await deliveryOf(record, load);
    if (typeof delivery === 'string') {
      entry.reason = delivery;
      await store.remove(record.id);
      continue;
    }
    const method = record.deliveredBy ?? record.method;
    entry.job = new FirmwareJob(server, {
      ...record.options,
      ...options.job,
      ...delivery,
      endpoint: record.endpoint,
      id: record.id,
      method,
      store,
      attempt: record.attempts,
      resumeFrom: record.state,
      resumed: (record.resumed ?? 0) + 1,
      ...(record.campaignId !== undefined ? { campaignId: record.campaignId } : {}),
    } as FirmwareJobOptions);
  }
  return out;
}

/** The image (checked against its SHA-256) or URI of a record, or why there is none. */
async function deliveryOf(
  record: FirmwareJobRecord,
  load: (image: FirmwareImageRef) => Promise<Buffer | undefined>,
): Promise<{ image: Buffer; imageSource?: string } | { uri: string } | string> {
  if (record.uri !== undefined) return { uri: record.uri };
  const ref = record.image;
  if (!ref) return 'the record names no image';
  if (ref.source === undefined) return 'the image came without a source (a msg payload): its bytes are gone';
  let image: Buffer | undefined;
  try {
    image = await load(ref);
  } catch (err) {
    return `the image cannot be loaded from ${ref.source}: ${(err as Error).message}`;
  }
  if (!image) return `the image is gone from ${ref.source}`;
  const sha256 = createHash('sha256').update(image).digest('hex');
  if (sha256 !== ref.sha256 || image.length !== ref.size) {
    return `the image at ${ref.source} changed (${image.length} bytes, sha256 ${sha256.slice(0, 12)}...)`;
  }
  return { image, imageSource: ref.source };
}

/** Default loader: a file path is read (undefined when it is gone), an http(s):// URL fetched. */
export async function loadImageFromSource(ref: FirmwareImageRef): Promise<Buffer | undefined> {
  const source = ref.source;
  if (source === undefined) return undefined;
  if (/^https?:\/\//i.test(source)) {
    const response = await fetch(source);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return Buffer.from(await response.arrayBuffer());
  }
  try {
    return await readFile(source);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
