import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import * as dgram from 'node:dgram';
import { ContentType } from '../../lib/dtls/constants';
import { DropLog, type DropReport } from '../../lib/dtls/drops';
import { encodeRecord } from '../../lib/dtls/record';
import { PSK_IDENTITY, PSK_KEY, startEchoServer, waitFor, type EchoServer } from './helpers';

const pskKey = (identity: string) => (identity === PSK_IDENTITY ? PSK_KEY : undefined);
const peer = { address: '192.0.2.1', port: 5000 };

describe('DTLS dropped records: counted by reason, reported at most once a minute per reason', function () {
  it('DropLog reports the first drop of a reason, then one per interval with the counts in between', () => {
    let now = 1_000_000;
    const reports: DropReport[] = [];
    const log = new DropLog(
      (drop) => reports.push(drop),
      60_000,
      () => now,
    );
    for (let i = 0; i < 5; i++) log.add('bad-version', peer);
    log.add('replay', peer);
    assert.deepEqual(
      reports.map((r) => [r.reason, r.total, r.sinceLastReport]),
      [
        ['bad-version', 1, 1],
        ['replay', 1, 1],
      ],
    );
    now += 59_999;
    log.add('bad-version', peer);
    assert.equal(reports.length, 2, 'still within the minute');
    now += 1;
    log.add('bad-version', { address: '192.0.2.9', port: 7 });
    assert.deepEqual(reports[2], {
      reason: 'bad-version',
      description: 'record version is not DTLS 1.2',
      peer: { address: '192.0.2.9', port: 7 },
      total: 7,
      sinceLastReport: 6,
    });
    assert.equal(log.counts['bad-version'], 7);
    assert.deepEqual(log.nonZero(), { 'bad-version': 7, replay: 1 });
  });

  describe('through a DtlsTransport', () => {
    let server: EchoServer;
    let socket: dgram.Socket;

    beforeEach(async () => {
      server = await startEchoServer({ pskKey });
      socket = dgram.createSocket('udp4');
      await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
    });
    afterEach(async () => {
      await new Promise<void>((resolve) => socket.close(() => resolve()));
      await server.close();
    });

    it('bad versions, garbage and records for no session: a count per reason, one report per reason', async () => {
      const reports: DropReport[] = [];
      server.transport.on('recordsDropped', (drop) => reports.push(drop));
      const dtls10Data = encodeRecord(ContentType.applicationData, 1, 1, Buffer.from('x'));
      dtls10Data.writeUInt16BE(0xfeff, 1);
      const noSession = encodeRecord(ContentType.applicationData, 1, 2, randomBytes(40));
      const garbage = Buffer.from('GET / HTTP/1.1\r\nHost: example\r\n\r\n');
      const count = 50;
      for (let i = 0; i < count; i++) {
        socket.send(dtls10Data, server.port, '127.0.0.1');
        socket.send(garbage, server.port, '127.0.0.1');
        socket.send(noSession, server.port, '127.0.0.1');
      }
      const dropped = server.transport.stats.dropped;
      await waitFor(
        () => dropped['bad-version'] + dropped.malformed + dropped['no-session'] === 3 * count,
        5000,
        'every datagram handled',
      );
      assert.deepEqual(server.transport.droppedRecords(), {
        'bad-version': count,
        malformed: count,
        'no-session': count,
      });
      assert.deepEqual(reports.map((r) => r.reason).sort(), ['bad-version', 'malformed', 'no-session']);
      const port = (socket.address() as { port: number }).port;
      assert.ok(reports.every((r) => r.peer.address === '127.0.0.1' && r.peer.port === port && r.total === 1));
      assert.equal(server.transport.stats.droppedDatagrams, 3 * count, 'the older counter still counts them');
    });
  });
});
