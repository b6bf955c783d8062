/**
 * `lwm2m-sim`: a fleet of simulated LwM2M devices from the command line.
 *
 *   npx lwm2m-sim --server coap://127.0.0.1:5683 --count 1000 --prefix sim- --objects 3,3303,3342 --change-every 5s
 *
 * Prints progress while devices register, update, answer and notify; Ctrl-C de-registers every device
 * and prints a summary (a second Ctrl-C quits at once).
 */
import { parseArgs } from 'node:util';
import { Fleet, type FleetOptions, type FleetStats } from './fleet';
import type { ClientLwm2mVersion } from './attributes';

export const USAGE = `Usage: lwm2m-sim [options]

A fleet of simulated LwM2M devices (one UDP socket each) that register with a server, keep their
registration up to date, answer Read/Write/Execute/Observe/Discover/Create/Delete and notify.

Options:
  -s, --server <uri>        LwM2M server (default coap://127.0.0.1:5683; coaps://host:5684 with --psk)
      --psk <id:hexkey>     DTLS pre-shared key: identity and key in hex (one device), or just the
                            hex key (every device uses its endpoint name as the identity)
      --bootstrap <uri>     LwM2M Bootstrap-Server, coap://host:5683 or coaps://host:5684 (with
                            --bootstrap-psk): devices bootstrap first (without --server) or when
                            registering fails for good (with --server), then register with the
                            server they were given (coap:// NoSec or coaps:// PSK)
      --bootstrap-psk <id:hexkey>
                            PSK of the Bootstrap-Server account, as for --psk
  -n, --count <n>           number of devices (default 1)
  -p, --prefix <text>       endpoint name prefix (default "sim-"): sim-1, sim-2, ...
      --start-index <n>     number of the first device (default 1)
  -o, --objects <list>      objects besides Security, Server and Device (always there), e.g.
                            3303,3304,3342,3425 or 3303*2 (two instances) or 3303@1.1 (object version);
                            default 3303
  -c, --change-every <t>    change simulated values every <t> (5s, 500ms, 1m; default 30s): each
                            sensor moves a little around its typical reading; 0 or never: only
                            what the server writes changes
  -l, --lifetime <s>        registration lifetime in seconds (default 300)
      --lwm2m <version>     1.0, 1.1 or 1.2 (default 1.1)
  -b, --binding <b>         binding (default U)
  -q, --queue               queue mode (Q)
      --formats <list>      content formats accepted, preferred first, e.g. 110,112,11542 (text and
                            opaque always are); announced with ct (1.1: the first, 1.2: all)
      --con                 confirmable notifications (default non-confirmable)
      --bind <addresses>    local addresses: 127.0.0.1, a range 127.0.1.1-127.0.1.40, or a list;
                            on Linux all of 127/8 is loopback, so a range goes past one address's ports
      --ports <range>       local port range, e.g. 20000-39999 (default: ports the OS picks)
      --per-address <n>     devices per local address (default: spread evenly)
      --rate <n>            devices started per second (default 500)
      --concurrency <n>     registrations in flight at once (default 100)
  -d, --duration <t>        stop (and de-register) after <t>; default: run until Ctrl-C
      --seed <n>            seed for the simulated values
      --quiet               no progress lines
      --json                print the summary as JSON
  -h, --help                this text
`;

export interface CliOptions {
  fleet: Partial<FleetOptions> & { serverUri: string; count: number };
  durationMs?: number;
  quiet: boolean;
  json: boolean;
}

/** '5s' / '500ms' / '2m' / '1h' / '10' (seconds) -> ms. */
export function parseDuration(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text);
  if (!match) throw new RangeError(`invalid duration "${text}" (use e.g. 5s, 500ms, 2m)`);
  const value = Number(match[1]);
  const unit = match[2] ?? 's';
  return Math.round(value * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit]!);
}

/** How often simulated values change by default: slow enough to read, often enough to see observations work. */
export const DEFAULT_CHANGE_EVERY_MS = 30_000;

/** --change-every: a duration, or 0 / never / off (values change only when the server writes them). */
function parseChangeEvery(text: string | undefined): number {
  if (text === undefined) return DEFAULT_CHANGE_EVERY_MS;
  if (/^\s*(?:never|off)\s*$/i.test(text)) return 0;
  return parseDuration(text);
}

function positiveInteger(text: string, name: string, min = 1): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) throw new RangeError(`--${name} must be a whole number >= ${min}`);
  return value;
}

/** `id:hexkey` or `hexkey` (the identity is then each device's endpoint name). */
function parsePsk(text: string, name: string, count: number): { identity?: string; key: Buffer } {
  const separator = text.lastIndexOf(':');
  const identity = separator >= 0 ? text.slice(0, separator) : undefined;
  const keyHex = text.slice(separator + 1);
  if (!/^(?:[0-9a-fA-F]{2}){4,64}$/.test(keyHex)) throw new RangeError(`--${name}: the key must be 4-64 bytes in hex`);
  if (identity !== undefined && (identity === '' || count > 1))
    throw new RangeError(`--${name}: an identity is for one device; for a fleet give only the key`);
  return { identity, key: Buffer.from(keyHex, 'hex') };
}

/** Parses the command line; undefined for --help. Throws RangeError for bad options. */
export function parseCommandLine(argv: string[]): CliOptions | undefined {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      server: { type: 'string', short: 's' },
      psk: { type: 'string' },
      bootstrap: { type: 'string' },
      'bootstrap-psk': { type: 'string' },
      count: { type: 'string', short: 'n' },
      prefix: { type: 'string', short: 'p' },
      'start-index': { type: 'string' },
      objects: { type: 'string', short: 'o' },
      'change-every': { type: 'string', short: 'c' },
      lifetime: { type: 'string', short: 'l' },
      lwm2m: { type: 'string' },
      binding: { type: 'string', short: 'b' },
      queue: { type: 'boolean', short: 'q' },
      formats: { type: 'string' },
      con: { type: 'boolean' },
      bind: { type: 'string' },
      ports: { type: 'string' },
      'per-address': { type: 'string' },
      rate: { type: 'string' },
      concurrency: { type: 'string' },
      duration: { type: 'string', short: 'd' },
      seed: { type: 'string' },
      quiet: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return undefined;
  const version = values.lwm2m ?? '1.1';
  if (!['1.0', '1.1', '1.2'].includes(version)) throw new RangeError(`--lwm2m must be 1.0, 1.1 or 1.2`);
  if (values.bootstrap !== undefined && !/^coaps?:\/\//.test(values.bootstrap)) {
    throw new RangeError('--bootstrap must be a coap:// or coaps:// URI');
  }
  const fleet: CliOptions['fleet'] = {
    // with --bootstrap and no --server the devices have no server account: bootstrap gives them one
    serverUri: values.server ?? (values.bootstrap !== undefined ? '' : 'coap://127.0.0.1:5683'),
    count: values.count === undefined ? 1 : positiveInteger(values.count, 'count', 0),
    lwm2mVersion: version as ClientLwm2mVersion,
  };
  if (values.prefix !== undefined) fleet.prefix = values.prefix;
  if (values.psk !== undefined) {
    fleet.psk = parsePsk(values.psk, 'psk', fleet.count);
    if (!fleet.serverUri.startsWith('coaps:')) throw new RangeError('--psk needs a coaps:// --server');
  }
  if (values.bootstrap !== undefined) fleet.bootstrapUri = values.bootstrap;
  if (values['bootstrap-psk'] !== undefined) {
    if (values.bootstrap === undefined) throw new RangeError('--bootstrap-psk needs --bootstrap');
    fleet.bootstrapPsk = parsePsk(values['bootstrap-psk'], 'bootstrap-psk', fleet.count);
    if (!values.bootstrap.startsWith('coaps:')) throw new RangeError('--bootstrap-psk needs a coaps:// --bootstrap');
  } else if (values.bootstrap?.startsWith('coaps:')) {
    throw new RangeError('a coaps:// --bootstrap needs --bootstrap-psk');
  }
  if (values['start-index'] !== undefined) fleet.startIndex = positiveInteger(values['start-index'], 'start-index', 0);
  if (values.objects !== undefined) {
    fleet.objects = values.objects
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== '' && item !== '0' && item !== '1' && item !== '3');
  }
  fleet.changeEveryMs = parseChangeEvery(values['change-every']);
  if (values.lifetime !== undefined) fleet.lifetime = positiveInteger(values.lifetime, 'lifetime');
  if (values.binding !== undefined) fleet.binding = values.binding;
  if (values.queue) fleet.queueMode = true;
  if (values.formats !== undefined) {
    fleet.contentFormats = values.formats.split(',').map((f) => positiveInteger(f.trim(), 'formats', 0));
  }
  if (values.con) fleet.confirmableNotifications = true;
  if (values.bind !== undefined) fleet.bindAddresses = values.bind;
  if (values.ports !== undefined) fleet.portRange = values.ports;
  if (values['per-address'] !== undefined)
    fleet.devicesPerAddress = positiveInteger(values['per-address'], 'per-address');
  if (values.rate !== undefined) fleet.registrationRate = positiveInteger(values.rate, 'rate');
  if (values.concurrency !== undefined) fleet.concurrency = positiveInteger(values.concurrency, 'concurrency');
  if (values.seed !== undefined) fleet.seed = positiveInteger(values.seed, 'seed', 0);
  return {
    fleet,
    durationMs: values.duration === undefined ? undefined : parseDuration(values.duration),
    quiet: values.quiet === true,
    json: values.json === true,
  };
}

function changeText(everyMs: number): string {
  if (everyMs <= 0) return 'values change only when written';
  return `values change every ${everyMs % 1000 === 0 ? `${everyMs / 1000} s` : `${everyMs} ms`}`;
}

function mb(bytes: number): string {
  return `${Math.round(bytes / 1048576)} MB`;
}

export function progressLine(s: FleetStats, rss: number): string {
  return (
    `registered ${s.registered}/${s.devices}` +
    (s.failed > 0 ? `  failed ${s.failed}` : '') +
    (s.registrationFailures > 0 ? `  register errors ${s.registrationFailures}` : '') +
    `  updates ${s.updates}` +
    (s.reRegistrations > 0 ? `  re-registrations ${s.reRegistrations}` : '') +
    (s.bootstraps + s.bootstrapFailures > 0
      ? `  bootstraps ${s.bootstraps}` + (s.bootstrapFailures > 0 ? ` (failed ${s.bootstrapFailures})` : '')
      : '') +
    `  requests ${s.requests}  observations ${s.observations}  notifications ${s.notifications}` +
    `  rss ${mb(rss)}`
  );
}

export function summaryText(s: FleetStats, peakRss: number): string {
  const lines = [
    `devices            ${s.devices}`,
    `registered (once)  ${s.everRegistered}` +
      (s.allRegisteredMs !== undefined && s.devices > 0
        ? `  (all in ${(s.allRegisteredMs / 1000).toFixed(1)} s, ${Math.round((s.devices * 1000) / Math.max(1, s.allRegisteredMs))}/s)`
        : ''),
    `failed             ${s.failed}  (register errors ${s.registrationFailures})`,
    `registrations      ${s.registrations}  (re-registrations ${s.reRegistrations})`,
    `updates            ${s.updates}`,
    ...(s.bootstraps + s.bootstrapFailures > 0
      ? [`bootstraps         ${s.bootstraps}  (failed attempts ${s.bootstrapFailures})`]
      : []),
    `requests answered  ${s.requests}`,
    `notifications      ${s.notifications}`,
    `value changes      ${s.valueChanges}`,
    `de-registrations   ${s.deregistrations}`,
    `running time       ${(s.elapsedMs / 1000).toFixed(1)} s`,
    `peak rss           ${mb(peakRss)}`,
  ];
  return lines.join('\n');
}

/**
 * Runs the simulator; resolves with the exit code once every device is stopped. `signals` lets tests
 * drive it without real signals.
 */
export async function main(
  argv: string[],
  io: { out: (text: string) => void; err: (text: string) => void; isTTY?: boolean } = {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    isTTY: process.stdout.isTTY,
  },
): Promise<number> {
  let options: CliOptions | undefined;
  try {
    options = parseCommandLine(argv);
  } catch (err) {
    io.err(`lwm2m-sim: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (options === undefined) {
    io.out(USAGE);
    return 0;
  }
  let fleet: Fleet;
  try {
    fleet = new Fleet(options.fleet);
  } catch (err) {
    io.err(`lwm2m-sim: ${(err as Error).message}\n`);
    return 2;
  }
  const o = fleet.options;
  if (!options.json) {
    io.out(
      `lwm2m-sim: ${o.count} device(s) ${o.prefix}${o.startIndex}..${o.prefix}${o.startIndex + o.count - 1}` +
        ` -> ${o.serverUri === '' ? `bootstrap ${o.bootstrapUri}` : o.serverUri}${o.serverUri !== '' && o.bootstrapUri ? ` (bootstrap ${o.bootstrapUri})` : ''} (LwM2M ${o.lwm2mVersion}, lifetime ${o.lifetime} s, objects 1,3${o.objects.length ? ',' + o.objects.join(',') : ''}, ${changeText(o.changeEveryMs)})\n`,
    );
  }
  let firstError: string | undefined;
  fleet.on('failed', (client, err) => {
    firstError ??= `${client.endpointName}: ${err.message}`;
  });
  let peakRss = process.memoryUsage().rss;
  let lastLine = '';
  const progress = setInterval(() => {
    const rss = process.memoryUsage().rss;
    peakRss = Math.max(peakRss, rss);
    if (options.quiet || options.json) return;
    const line = progressLine(fleet.stats(), rss);
    if (io.isTTY) io.out(`\r${line}\x1b[K`);
    else if (line !== lastLine) io.out(line + '\n');
    lastLine = line;
  }, 1000);

  let stopping: Promise<FleetStats> | undefined;
  let signalCount = 0;
  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => (resolveDone = resolve));
  const stop = (why: string): void => {
    if (stopping !== undefined) return;
    if (!options.quiet && !options.json) {
      io.out(`${io.isTTY ? '\n' : ''}lwm2m-sim: ${why}; de-registering ${fleet.stats().registered} device(s)...\n`);
    }
    stopping = fleet.stop();
    void stopping.then(() => resolveDone());
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    signalCount++;
    if (signalCount > 1) {
      io.err(`lwm2m-sim: ${signal} again, quitting without waiting\n`);
      process.exit(130);
    }
    stop(`${signal}`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const durationTimer =
    options.durationMs === undefined ? undefined : setTimeout(() => stop('time is up'), options.durationMs);
  fleet.launch();
  if (!options.quiet && !options.json) {
    fleet
      .whenRegistered()
      .then((s) => {
        const line = `all ${s.devices} device(s) registered in ${((s.allRegisteredMs ?? 0) / 1000).toFixed(1)} s`;
        io.out(io.isTTY ? `\r${line}\x1b[K\n` : `${line}\n`);
      })
      .catch(() => undefined);
  }
  await done;
  clearInterval(progress);
  if (durationTimer !== undefined) clearTimeout(durationTimer);
  process.removeListener('SIGINT', onSignal);
  process.removeListener('SIGTERM', onSignal);
  const stats = await stopping!;
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
  if (options.json) io.out(JSON.stringify({ ...stats, peakRssBytes: peakRss }) + '\n');
  else {
    io.out(summaryText(stats, peakRss) + '\n');
    if (firstError !== undefined) io.out(`first failure: ${firstError}\n`);
  }
  return stats.failed > 0 && stats.everRegistered === 0 ? 1 : 0;
}

/** Entry point for bin/lwm2m-sim.js. */
export function run(argv: string[] = process.argv.slice(2)): void {
  main(argv).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`lwm2m-sim: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exitCode = 1;
    },
  );
}

if (require.main === module) run();
