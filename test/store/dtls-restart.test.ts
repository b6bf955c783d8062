import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Lwm2mClient } from '../../lib/client';
import type { Lwm2mServer } from '../../lib/server/lwm2m-server';
import type { Notification } from '../../lib/server/observation-service';
import { FileDtlsSessionStore } from '../../lib/store/file';
import type { Journal } from '../../lib/store/file/journal';
import { FAST_COAP, nextEvent } from '../client/helpers';
import { FileServers } from './file-servers';

const KEY = Buffer.from('greenhouse-key-0042');

const OPTIONS = { port: 0, plain: false, lifetimeGraceSeconds: 0, coap: { ...FAST_COAP } };

/** The DTLS listener with its sessions in the journal, kept on close (what a graceful stop of Node-RED does). */
const dtlsOn = (securePort: number) => (journal: Journal) => ({
  dtls: { port: securePort, sessionStore: new FileDtlsSessionStore(journal), keepSessionsOnClose: true },
});

function handshakes(server: Lwm2mServer): number {
  const dual = (server as unknown as { dual?: { secure?: { stats: { handshakesStarted: number } } } }).dual;
  return dual?.secure?.stats.handshakesStarted ?? -1;
}

describe('a DTLS server restarted on its file store', function () {
  this.timeout(30_000);
  let dir: string;
  let device: Lwm2mClient | undefined;
  const servers = new FileServers();

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'lwm2m-dtls-restart-'));
  });
  after(async () => {
    await device?.stop({ deregister: false, timeoutMs: 300 }).catch(() => undefined);
    await servers.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('goes on with the same DTLS session: no handshake, reads and notifications; no key material in clear', async () => {
    const first = servers.open(dir, OPTIONS, dtlsOn(0), 'store secret');
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
    await servers.stop(first);
    const text = readFileSync(path.join(dir, 'server.journal'), 'utf8');
    assert.ok(
      !text.includes(KEY.toString('hex')) && !text.includes(KEY.toString('base64')) && !text.includes('greenhouse-key'),
    );

    const second = servers.open(dir, OPTIONS, dtlsOn(securePort), 'store secret');
    await second.server.start();
    const read = await second.server.read('greenhouse-42', '/3/0/0');
    assert.equal(read.code, '2.05');
    const notified = nextEvent<Notification>(second.server, 'notification');
    device.set('/3303/0/5700', 19.5);
    assert.equal((await notified).value, 19.5);
    assert.equal(handshakes(second.server), 0, 'the device did not handshake again');
  });
});
