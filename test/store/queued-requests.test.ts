import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Lwm2mRequestError } from '../../lib/server/errors';
import type { QueuedRequestSettled } from '../../lib/server/lwm2m-server';
import type { QueuedRequestRecord } from '../../lib/server/queue-mode';
import { FileRecordStore } from '../../lib/store/file';
import type { Journal } from '../../lib/store/file/journal';
import { waitFor } from '../client/helpers';
import { CoapDevice } from '../peers/coap-device';
import { FileServers } from './file-servers';

const OPTIONS = { queueAwakeWindowMs: 200, queuedRequestTtlMs: 60_000, coap: { ackTimeoutMs: 150, maxRetransmit: 1 } };

/** Held requests in the journal too, sealed (a held Write may carry a device's keys). */
const heldInJournal = (journal: Journal) => ({
  queuedRequestStore: new FileRecordStore<QueuedRequestRecord>(journal, 'queued-requests', (record) => record.id, true),
});

describe('requests held for a sleeping device, across a restart (file store)', function () {
  this.timeout(20_000);
  let dir: string;
  let device: CoapDevice | undefined;
  const servers = new FileServers();

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'lwm2m-queued-'));
  });
  after(async () => {
    await device?.stop();
    await servers.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('still go out when the device wakes after the restart; the outcome is an event; nothing is sent twice', async () => {
    const first = servers.open(dir, { ...OPTIONS, port: 0 }, heldInJournal);
    const port = (await first.server.start()).port;
    device = new CoapDevice('valve-sleepy', port);
    await device.start();
    const sleeping = once(first.server as never, 'sleeping');
    await device.register('lt=3600&lwm2m=1.1&Q');
    await sleeping;

    // A command to close the valve, and a read nobody will see the answer of: both wait for the device.
    const closing = first.server.write('valve-sleepy', '/3/0/14', '+01:00');
    await waitFor(() => first.server.queuedRequests('valve-sleepy') === 1, 2000, 'the write to be held');
    await first.journal.flush();
    // Sealed in the file: a held write may carry a device's keys.
    const journalText = readFileSync(path.join(dir, 'server.journal'), 'utf8');
    assert.ok(journalText.includes('"queued-requests"'), 'the held write is in the file');
    assert.ok(!journalText.includes('PUT /3/0/14') && !journalText.includes(Buffer.from('+01:00').toString('base64')));
    await first.server.stop();
    await assert.rejects(closing, (err: Lwm2mRequestError) => {
      assert.equal(err.code, 'closed');
      assert.match(err.message, /stays queued/);
      return true;
    });
    await servers.stop(first);

    const second = servers.open(dir, { ...OPTIONS, port }, heldInJournal);
    const settled: QueuedRequestSettled[] = [];
    second.server.on('queuedRequestSettled', (item: QueuedRequestSettled) => settled.push(item));
    await second.server.start();
    assert.equal(second.server.queuedRequests('valve-sleepy'), 1, 'held again after the restart');
    const before = device.requests.length;
    assert.equal(await device.update(), '2.04'); // the device wakes
    await waitFor(() => settled.length === 1, 5000, 'the held write to go out');
    assert.deepEqual(
      { ...settled[0], queuedAt: 0 },
      { endpoint: 'valve-sleepy', description: 'PUT /3/0/14', code: '2.04', queuedAt: 0 },
    );
    const puts = device.requests.slice(before).filter((request) => request.method === 'PUT');
    assert.equal(puts.length, 1);
    assert.equal(puts[0].url, '/3/0/14');

    // Settled: gone from the store, so a third start sends nothing again.
    await servers.stop(second);
    const third = servers.open(dir, { ...OPTIONS, port }, heldInJournal);
    await third.server.start();
    assert.equal(third.server.queuedRequests('valve-sleepy'), 0);
  });
});
