import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Lwm2mClient } from '../../lib/client';
import type { FirmwareJobRecord } from '../../lib/firmware/store';
import { FileRecordStore, openJournal } from '../../lib/store/file';
import type { Lwm2mServerConfigNode } from '../../nodes/shared/server-config';
import { resetHosts } from '../../nodes/shared/server-host';
import { FAST_COAP, waitFor } from '../client/helpers';
import { firmwarePackage } from '../firmware/helpers';
import { freeUdpPort, helper, ourNodes } from '../nodes/helper';

const nodes = [...ourNodes, require('../../nodes/lwm2m-firmware-update')];
type Msg = Record<string, unknown>;

describe('lwm2m-firmware-update node after a restart (file store)', function () {
  this.timeout(30_000);
  let storeDir: string;
  let device: Lwm2mClient | undefined;

  before(() => {
    storeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lwm2m-fw-resume-'));
  });
  after(async () => {
    await device?.stop({ timeoutMs: 300 }).catch(() => undefined);
    await helper.unload();
    await resetHosts();
    fs.rmSync(storeDir, { recursive: true, force: true });
  });

  it('reports the job a crash interrupted and finishes it (image from its file), and reports one it cannot resume', async () => {
    const port = await freeUdpPort();
    const server = {
      id: 'srv',
      type: 'lwm2m-server',
      address: '127.0.0.1',
      port,
      dtlsEnabled: false,
      storeDir,
      ackTimeout: 100,
      maxRetransmit: 2,
    };
    // A first run: the device registers (kept in the file).
    await helper.load(nodes, [server, { id: 'reg', type: 'lwm2m-register-in', server: 'srv', wires: [] }]);
    device = new Lwm2mClient({
      endpointName: 'valve-9',
      serverUri: `coap://127.0.0.1:${port}`,
      objects: [5],
      lifetime: 3600,
      firmware: { updateDelayMs: 20, downloadTimeoutMs: 3000 },
      coap: FAST_COAP,
      rebootDelayMs: 50,
    });
    await device.start();
    await helper.unload();
    await resetHosts();

    // What a crash in the middle of a campaign leaves in the file: the records of that node's jobs.
    const imagePath = path.join(storeDir, 'valve-2.0.0.bin');
    const image = firmwarePackage('2.0.0');
    fs.writeFileSync(imagePath, image);
    const journal = openJournal(storeDir, 'server');
    const records = new FileRecordStore<FirmwareJobRecord>(journal, 'firmware-jobs', (record) => record.id);
    const base = {
      method: 'push' as const,
      detail: 'pushing',
      attempts: 1,
      startedAt: Date.now() - 5000,
      updatedAt: Date.now() - 1000,
      options: { expectedFirmwareVersion: '2.0.0' },
    };
    await records.save({
      ...base,
      id: 'job-1',
      endpoint: 'valve-9',
      campaignId: 'fw:c1',
      state: 'downloading',
      image: { sha256: createHash('sha256').update(image).digest('hex'), size: image.length, source: imagePath },
    });
    await records.save({
      ...base,
      id: 'job-2',
      endpoint: 'valve-10',
      campaignId: 'fw:c1',
      state: 'downloading',
      image: { sha256: 'ab'.repeat(32), size: 10 }, // it came from a msg: nothing to load it from
    });
    await records.save({
      ...base,
      id: 'job-3',
      endpoint: 'valve-11',
      campaignId: 'other-node:c2',
      state: 'downloading',
    });
    await journal.close();

    const results: Msg[] = [];
    await helper.load(nodes, [
      { id: 'f1', type: 'tab', label: 'test' },
      server,
      { id: 'fw', z: 'f1', type: 'lwm2m-firmware-update', server: 'srv', wires: [[], ['results']] },
      { id: 'results', z: 'f1', type: 'helper' },
    ]);
    helper.getNode('results').on('input', (msg: Msg) => results.push(msg));
    await (helper.getNode('srv') as unknown as Lwm2mServerConfigNode).ready();
    await waitFor(
      () => results.some((msg) => (msg.lwm2m as Msg).event === 'updated'),
      20_000,
      'the resumed job to finish',
    );

    const interrupted = results
      .filter((msg) => (msg.lwm2m as Msg).event === 'interrupted')
      .map((msg) => [msg.topic, (msg.payload as Msg).cause, (msg.payload as Msg).reason]);
    assert.equal(interrupted.length, 2, JSON.stringify(interrupted));
    assert.deepEqual(
      interrupted.find(([topic]) => topic === 'valve-9'),
      ['valve-9', 'interrupted', 'resumed'],
    );
    const lost = interrupted.find(([topic]) => topic === 'valve-10')!;
    assert.equal(lost[1], 'interrupted');
    assert.notEqual(lost[2], 'resumed');
    assert.ok(!results.some((msg) => msg.topic === 'valve-11'), "another node's job is left to it");
    const done = results.find((msg) => (msg.lwm2m as Msg).event === 'updated')!.payload as Msg;
    assert.equal(done.ok, true);
    assert.equal(done.firmwareVersion, '2.0.0');
  });
});
