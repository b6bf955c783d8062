import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Lwm2mClient } from '../../lib/client';
import { Lwm2mServer } from '../../lib/server/lwm2m-server';
import type { Notification } from '../../lib/server/observation-service';
import {
  FileDtlsSessionStore,
  FileObservationStore,
  FileRegistrationStore,
  FileSecurityStore,
  openJournal,
} from '../../lib/store/file';
import type { Journal } from '../../lib/store/journal';
import { FAST_COAP, nextEvent } from '../client/helpers';

const KEY = Buffer.from('greenhouse-key-0042');

/** A server with DTLS on the file store of `dir`, as a restarted Node-RED would make it. */
function secureServer(dir: string, securePort: number): { server: Lwm2mServer; journal: Journal } {
  const journal = openJournal(dir, 'server', { secret: 'store secret' });
  const server = new Lwm2mServer({
    address: '127.0.0.1',
    port: 0,
    plain: false,
    dtls: { port: securePort, sessionStore: new FileDtlsSessionStore(journal), keepSessionsOnClose: true },
    lifetimeGraceSeconds: 0,
    coap: { ...FAST_COAP },
    registrationStore: new FileRegistrationStore(journal),
    observationStore: new FileObservationStore(journal),
    securityStore: new FileSecurityStore(journal),
  });
  return { server, journal };
}

function handshakes(server: Lwm2mServer): number {
  const dual = (server as unknown as { dual?: { secure?: { stats: { handshakesStarted: number } } } }).dual;
  return dual?.secure?.stats.handshakesStarted ?? -1;
}

describe('a DTLS server restarted on its file store', function () {
  this.timeout(30_000);
  let dir: string;
  let device: Lwm2mClient | undefined;
  const running: Array<{ server: Lwm2mServer; journal: Journal }> = [];

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'lwm2m-dtls-restart-'));
  });
  after(async () => {
    await device?.stop({ deregister: false, timeoutMs: 300 }).catch(() => undefined);
    for (const { server, journal } of running) {
      await server.stop();
      await journal.close();
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('goes on with the same DTLS session: no handshake, reads and notifications; no key material in clear', async () => {
    const first = secureServer(dir, 0);
    running.push(first);
    await first.server.start();
    await first.server.securityStore.add({
      endpoint: 'greenhouse-42',
      mode: 'psk',
      identity: 'greenhouse-42',
      key: KEY,
    });
    const securePort = first.server.secureAddress!.port;
    device = new Lwm2mClient({
      endpointName: 'greenhouse-42',
      serverUri: `coaps://127.0.0.1:${securePort}`,
      psk: { identity: 'greenhouse-42', key: KEY },
      lifetime: 3600,
      objects: [3303],
      coap: { ...FAST_COAP },
    });
    await device.start();
    await first.server.observe('greenhouse-42', '/3303/0/5700', { owner: 'flow' });

    // A graceful stop (what Node-RED does on SIGTERM): the session is handed to the file.
    await first.server.stop();
    await first.journal.close();
    running.shift();
    const text = readFileSync(path.join(dir, 'server.journal'), 'utf8');
    assert.ok(
      !text.includes(KEY.toString('hex')) && !text.includes(KEY.toString('base64')) && !text.includes('greenhouse-key'),
    );

    const second = secureServer(dir, securePort);
    running.push(second);
    await second.server.start();
    const read = await second.server.read('greenhouse-42', '/3/0/0');
    assert.equal(read.code, '2.05');
    const notified = nextEvent<Notification>(second.server, 'notification');
    device.set('/3303/0/5700', 19.5);
    assert.equal((await notified).value, 19.5);
    assert.equal(handshakes(second.server), 0, 'the device did not handshake again');
  });
});
