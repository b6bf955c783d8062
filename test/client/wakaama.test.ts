/**
 * Our client against Eclipse Wakaama's example server (a C implementation we did not write), driven
 * through its command line. Runs only when WAKAAMA_SERVER names the `lwm2mserver` binary, e.g.
 *   WAKAAMA_SERVER=/path/to/wakaama/build/server/lwm2mserver npm test
 */
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { Lwm2mClient } from '../../lib/client';
import { FAST_COAP, waitFor } from './helpers';

const binary = process.env.WAKAAMA_SERVER;

async function freeUdpPort(): Promise<number> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  const port = (socket.address() as AddressInfo).port;
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

describe('client: interop with the Wakaama server (optional)', function () {
  let server: ChildProcessWithoutNullStreams;
  let output = '';
  let client: Lwm2mClient;

  before(function () {
    if (binary === undefined || !existsSync(binary)) this.skip();
  });

  afterEach(async function () {
    await client?.stop({ timeoutMs: 1000 });
    if (server && server.exitCode === null) {
      server.stdin.end('q\n');
      await new Promise((resolve) => {
        const timer = setTimeout(() => server.kill('SIGKILL'), 2000);
        server.once('exit', () => resolve(clearTimeout(timer)));
      });
    }
  });

  for (const version of ['1.0', '1.1'] as const) {
    it(`registers as ${version}, answers read / write / execute / discover / observe, de-registers`, async function () {
      const port = await freeUdpPort();
      output = '';
      server = spawn(binary!, ['-4', '-l', String(port)]);
      server.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      server.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      await waitFor(() => output.includes('>'), 3000, 'the Wakaama prompt').catch(() => undefined);
      client = new Lwm2mClient({
        endpointName: `ours-${version}`,
        serverUri: `coap://127.0.0.1:${port}`,
        bindAddress: '127.0.0.1',
        lwm2mVersion: version,
        objects: [3303],
        coap: FAST_COAP,
      });
      client.set('/3303/0/5700', 21.5);
      await client.start();
      await waitFor(() => output.includes('New client #0 registered.'), 3000, 'Wakaama saw the registration');
      assert.match(output, new RegExp(`version: "${version.replace('.', '\\.')}"`));
      const command = async (line: string, expect: RegExp, what: string) => {
        server.stdin.write(line + '\n');
        await waitFor(() => expect.test(output), 3000, what);
      };
      await command('read 0 /3303/0/5700', /Client #0 \/3303\/0\/5700 : 2\.05/, 'a read');
      await command('write 0 /3303/0/5750 greenhouse', /Client #0 \/3303\/0\/5750 : 2\.04/, 'a write');
      assert.equal(client.get('/3303/0/5750'), 'greenhouse');
      await command('exec 0 /3303/0/5605', /Client #0 \/3303\/0\/5605 : 2\.04/, 'an execute');
      await command('disc 0 /3303', /<\/3303\/0\/5700>/, 'a discover');
      await command('observe 0 /3303/0/5700', /Notify from client #0 \/3303\/0\/5700 number 0/, 'an observe');
      client.set('/3303/0/5700', 33.25);
      await waitFor(() => /Notify from client #0 \/3303\/0\/5700 number [1-9]/.test(output), 3000, 'a notification');
      await client.stop();
      await waitFor(() => output.includes('Client #0 unregistered.'), 3000, 'the de-registration');
    });
  }
});
