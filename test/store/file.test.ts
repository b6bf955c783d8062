import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  FileBootstrapConfigStore,
  FileDtlsSessionStore,
  FileObservationStore,
  FileRegistrationStore,
  FileSecurityStore,
  openJournal,
  safeFileName,
} from '../../lib/store/file';
import type { Registration } from '../../lib/server/registration';
import type { StoredObservation } from '../../lib/server/stores';
import type { StoredDtlsSession } from '../../lib/dtls/session-store';

function registration(endpoint: string, id = `id-${endpoint}`): Registration {
  return {
    id,
    endpoint,
    lifetime: 86400,
    lwm2mVersion: '1.1',
    binding: 'U',
    queueMode: false,
    address: '127.0.0.1',
    port: 40000,
    peerKey: '127.0.0.1:40000',
    rootPath: '',
    objects: { 3: { instances: [0] }, 3303: { instances: [0, 1], version: '1.1' } },
    supportedContentFormats: [110, 112],
    additionalAttributes: {},
    registeredAt: 1_700_000_000_000,
    lastUpdateAt: 1_700_000_000_000,
  };
}

function observation(id: string, registrationId: string): StoredObservation {
  return {
    id,
    registrationId,
    endpoint: 'sensor-1',
    path: '/3303/0/5700',
    token: 'a1b2c3d4',
    peerKey: '127.0.0.1:40000',
    owners: ['node-1'],
    createdAt: 1_700_000_000_000,
  };
}

describe('file store (journal)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'lwm2m-store-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps registrations and observations across a reopen, with their indexes', async () => {
    let journal = openJournal(dir, 'server');
    let registrations = new FileRegistrationStore(journal);
    let observations = new FileObservationStore(journal);
    await registrations.add(registration('sensor-1'));
    await registrations.add(registration('sensor-2'));
    await registrations.update({ ...registration('sensor-2'), lifetime: 60 });
    await registrations.remove('id-sensor-1');
    await registrations.add(registration('sensor-3'));
    // Same endpoint, new id: the old registration is replaced in the file too.
    await registrations.add(registration('sensor-3', 'id-sensor-3b'));
    await observations.add(observation('o1', 'id-sensor-2'));
    await observations.add(observation('o2', 'id-sensor-3b'));
    await observations.removeByRegistration('id-sensor-3b');
    await journal.close();

    journal = openJournal(dir, 'server');
    registrations = new FileRegistrationStore(journal);
    observations = new FileObservationStore(journal);
    assert.deepEqual((await registrations.list()).map((r) => r.id).sort(), ['id-sensor-2', 'id-sensor-3b']);
    assert.equal((await registrations.getByEndpoint('sensor-2'))?.lifetime, 60);
    assert.deepEqual((await registrations.getByEndpoint('sensor-3'))?.objects[3303], {
      instances: [0, 1],
      version: '1.1',
    });
    assert.equal((await registrations.getByPeer('127.0.0.1:40000'))?.endpoint !== undefined, true);
    assert.equal((await observations.getByToken('127.0.0.1:40000', 'a1b2c3d4'))?.id, 'o1');
    assert.deepEqual(
      (await observations.list()).map((o) => o.id),
      ['o1'],
    );
    await journal.close();
  });

  it('seals device keys and DTLS secrets: the file holds neither in clear; mode 0600', async () => {
    const key = Buffer.from('secret-psk-key-0123456789', 'utf8');
    const masterSecret = Buffer.alloc(48, 0x5a);
    let journal = openJournal(dir, 'server', { secret: 'my store secret' });
    await new FileSecurityStore(journal).add({ endpoint: 'sensor-1', mode: 'psk', identity: 'sensor-1', key });
    const sessions = new FileDtlsSessionStore(journal);
    const session: StoredDtlsSession = {
      masterSecret,
      suiteId: 0xc0a8,
      extendedMasterSecret: true,
      identity: { mode: 'psk', identity: 'sensor-1' },
      credential: { kind: 'psk', salt: Buffer.alloc(16, 1), fingerprint: Buffer.alloc(32, 2) },
    };
    sessions.setResumable(Buffer.from('0102', 'hex'), session, Date.now() + 60_000);
    await journal.flush();
    await journal.close();

    const file = path.join(dir, 'server.journal');
    const text = readFileSync(file, 'utf8');
    assert.ok(
      !text.includes(key.toString('hex')) && !text.includes(key.toString('base64')) && !text.includes('secret-psk'),
    );
    assert.ok(!text.includes(masterSecret.toString('base64')) && !text.includes(masterSecret.toString('hex')));
    assert.equal(statSync(file).mode & 0o777, 0o600);

    journal = openJournal(dir, 'server', { secret: 'my store secret' });
    const security = new FileSecurityStore(journal);
    const info = await security.getByPskIdentity('sensor-1');
    assert.ok(info && info.mode === 'psk' && info.key.equals(key));
    const restored = new FileDtlsSessionStore(journal).getResumable(Buffer.from('0102', 'hex'));
    assert.ok(restored?.masterSecret.equals(masterSecret));
    await journal.close();

    // Another secret opens nothing, says so, and the rest of the file still loads.
    const skipped: string[] = [];
    journal = openJournal(dir, 'server', { secret: 'another secret', onSkipped: (reason) => skipped.push(reason) });
    assert.equal((await new FileSecurityStore(journal).list()).length, 0);
    assert.match(skipped.join('\n'), /could not be decrypted/);
    await journal.close();
  });

  it('without a secret, generates a key file (0600) and uses it again', async () => {
    let journal = openJournal(dir, 'server');
    await new FileSecurityStore(journal).add({
      endpoint: 'a',
      mode: 'psk',
      identity: 'a',
      key: Buffer.from('k1k2k3k4'),
    });
    await journal.close();
    assert.equal(statSync(path.join(dir, 'store.key')).mode & 0o777, 0o600);
    journal = openJournal(dir, 'server');
    assert.equal((await new FileSecurityStore(journal).list()).length, 1);
    await journal.close();
  });

  it('skips a torn last line (a kill while appending) and reports it', async () => {
    const journal = openJournal(dir, 'server');
    await new FileRegistrationStore(journal).add(registration('sensor-1'));
    await journal.close();
    appendFileSync(path.join(dir, 'server.journal'), '["p","registrations","id-x",{"id":"id-x","endp');
    const skipped: string[] = [];
    const reopened = openJournal(dir, 'server', { onSkipped: (reason) => skipped.push(reason) });
    const registrations = new FileRegistrationStore(reopened);
    assert.deepEqual(
      (await registrations.list()).map((r) => r.id),
      ['id-sensor-1'],
    );
    assert.match(skipped[0], /1 unreadable line/);
    // The store goes on: later writes are read back after the torn line.
    await registrations.add(registration('sensor-2'));
    await reopened.close();
    const again = new FileRegistrationStore(openJournal(dir, 'server'));
    assert.equal((await again.list()).length, 2);
  });

  it('compacts: the file is rewritten from the live state once superseded lines dominate', async () => {
    const journal = openJournal(dir, 'server', { compactAfterDeadLines: 100 });
    const registrations = new FileRegistrationStore(journal);
    await registrations.add(registration('sensor-1'));
    for (let i = 0; i < 400; i++) await registrations.update({ ...registration('sensor-1'), lastUpdateAt: i });
    await journal.flush();
    const lines = readFileSync(path.join(dir, 'server.journal'), 'utf8').trim().split('\n');
    assert.ok(lines.length < 150, `${lines.length} lines after compaction`);
    await journal.close();
    const reopened = new FileRegistrationStore(openJournal(dir, 'server'));
    assert.equal((await reopened.getByEndpoint('sensor-1'))?.lastUpdateAt, 399);
  });

  it('keeps bootstrap configurations as they were given, checked again when read back', async () => {
    let journal = openJournal(dir, 'bootstrap');
    const configs = new FileBootstrapConfigStore(journal);
    await configs.restore();
    await configs.set('sensor-*', {
      servers: [
        { shortServerId: 1, uri: 'coaps://dm.example:5684', securityMode: 'psk', pskIdentity: 'x', pskKey: '00112233' },
      ],
    });
    await journal.close();
    const text = readFileSync(path.join(dir, 'bootstrap.journal'), 'utf8');
    assert.ok(!text.includes('00112233') && !text.includes('dm.example'));
    journal = openJournal(dir, 'bootstrap');
    const restored = new FileBootstrapConfigStore(journal);
    assert.deepEqual(await restored.restore(), []);
    const config = await restored.get('sensor-42');
    assert.equal(config?.servers[0].uri, 'coaps://dm.example:5684');
    assert.ok(config?.servers[0].pskKey?.equals(Buffer.from('00112233', 'hex')));
    await journal.close();
  });

  it('writes an update once, in order with a removal made meanwhile: a removed observation stays removed', async () => {
    let journal = openJournal(dir, 'server');
    let observations = new FileObservationStore(journal);
    await observations.add(observation('o1', 'r1'));
    await Promise.all([
      observations.update({ ...observation('o1', 'r1'), owners: ['node-1', 'node-2'] }),
      observations.removeByRegistration('r1'),
    ]);
    await journal.close();
    journal = openJournal(dir, 'server');
    observations = new FileObservationStore(journal);
    assert.deepEqual(await observations.list(), []);
    await journal.close();
    const lines = readFileSync(path.join(dir, 'server.journal'), 'utf8').trim().split('\n');
    assert.equal(lines.length, 3, 'add, update, delete: one line each');
  });

  it('keeps entries sealed with another secret through compaction: with the right secret back, they come back', async () => {
    let journal = openJournal(dir, 'server', { secret: 'one' });
    await new FileSecurityStore(journal).add({
      endpoint: 'a',
      mode: 'psk',
      identity: 'a',
      key: Buffer.from('k1k2k3k4'),
    });
    await journal.close();
    journal = openJournal(dir, 'server', { secret: 'two', onSkipped: () => undefined });
    assert.equal((await new FileSecurityStore(journal).list()).length, 0);
    await journal.compact();
    await journal.close();
    journal = openJournal(dir, 'server', { secret: 'one' });
    assert.equal((await new FileSecurityStore(journal).getByPskIdentity('a'))?.endpoint, 'a');
    await journal.close();
  });

  it('a write made while the file is being compacted is written after it', async () => {
    const journal = openJournal(dir, 'server');
    const registrations = new FileRegistrationStore(journal);
    for (let i = 0; i < 50; i++) await registrations.add(registration(`dev-${i}`));
    const compacting = journal.compact();
    const written = registrations.add(registration('late'));
    await compacting;
    await written;
    await journal.close();
    const reopened = new FileRegistrationStore(openJournal(dir, 'server'));
    assert.ok(await reopened.getByEndpoint('late'));
  });

  it('a journal opened again on the same file supersedes the first: its compaction no longer replaces the file', async () => {
    const first = openJournal(dir, 'server');
    const before = new FileRegistrationStore(first);
    await before.add(registration('sensor-1'));
    const second = openJournal(dir, 'server'); // a redeploy that changed the store settings
    const after = new FileRegistrationStore(second);
    await first.compact();
    await after.add(registration('sensor-2'));
    await first.close();
    await second.close();
    const reopened = new FileRegistrationStore(openJournal(dir, 'server'));
    assert.deepEqual((await reopened.list()).map((r) => r.endpoint).sort(), ['sensor-1', 'sensor-2']);
  });

  it('escapes names into safe file names', () => {
    assert.equal(safeFileName('coap-5683'), 'coap-5683');
    assert.equal(safeFileName('../etc/x'), '..%2Fetc%2Fx');
    assert.equal(safeFileName('::1-5683'), '%3A%3A1-5683');
    assert.equal(safeFileName('..'), '%..');
  });

  it('is readable after kill -9 in the middle of a write storm', async function () {
    this.timeout(30_000);
    const writer = `
      const { openJournal, FileRegistrationStore } = require(${JSON.stringify(path.join(__dirname, '../../lib/store/file'))});
      const journal = openJournal(process.argv[1], 'server', { compactAfterDeadLines: 500 });
      const store = new FileRegistrationStore(journal);
      let i = 0;
      (async () => {
        for (;;) {
          const batch = [];
          for (let k = 0; k < 50; k++, i++) {
            const ep = 'dev-' + (i % 300);
            batch.push(store.add({ id: 'r' + i, endpoint: ep, lifetime: 60, lwm2mVersion: '1.1', binding: 'U', queueMode: false,
              address: '10.0.0.1', port: 1000 + (i % 300), peerKey: '10.0.0.1:' + (1000 + (i % 300)), rootPath: '',
              objects: { 3: { instances: [0] } }, supportedContentFormats: [], additionalAttributes: { pad: 'x'.repeat(200) },
              registeredAt: i, lastUpdateAt: i }));
          }
          await Promise.all(batch);
          if (i === 1000) process.send('running');
        }
      })();
    `;
    const child = spawn(process.execPath, ['-e', writer, dir], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (code) => reject(new Error(`writer exited early (${code})`)));
    });
    await new Promise((resolve) => setTimeout(resolve, 300 + Math.random() * 300));
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));

    const skipped: string[] = [];
    const journal = openJournal(dir, 'server', { onSkipped: (reason) => skipped.push(reason) });
    const store = new FileRegistrationStore(journal);
    const all = await store.list();
    // Every endpoint has one registration (the newest written), and each one is whole.
    assert.equal(all.length, 300);
    for (const item of all) assert.equal(item.additionalAttributes.pad.length, 200);
    assert.ok(skipped.length <= 1, skipped.join('; '));
    await journal.close();
  });
});
