import { strict as assert } from 'node:assert';
import * as dgram from 'node:dgram';
import { resetDeviceBrowser } from '../../nodes/shared/admin-api';
import { resetHosts } from '../../nodes/shared/server-host';
import { waitFor } from '../client/helpers';
import { freeUdpPort, helper, loadServerNode } from './helper';

const nodes = [
  require('../../nodes/plugins/lwm2m-device-browser'),
  require('../../nodes/lwm2m-server'),
  require('../../nodes/lwm2m-register-in'),
];

/**
 * Dropped DTLS records reach the user: one warning per reason (throttled) in the Node-RED log, and the counts
 * by reason in the device browser (the devices list of the server).
 */
describe('lwm2m-server node: dropped DTLS records are warned about and counted', function () {
  let socket: dgram.Socket | undefined;

  afterEach(async function () {
    // A test that failed before it made its socket still unloads its flow.
    await new Promise<void>((resolve) => (socket ? socket.close(() => resolve()) : resolve()));
    socket = undefined;
    await helper.unload();
    resetDeviceBrowser();
    await resetHosts();
  });

  it('a burst of garbage and bad-version records: one warning per reason, the counts in the device browser', async () => {
    const securePort = await freeUdpPort();
    const config = await loadServerNode({ store: 'memory', dtlsEnabled: true, securePort: String(securePort) }, nodes);
    const warnings: string[] = [];
    helper.getNode('srv').on('call:warn', (call: { args: [string] }) => warnings.push(call.args[0]));

    const sender = dgram.createSocket('udp4');
    socket = sender;
    await new Promise<void>((resolve) => sender.bind(0, '127.0.0.1', () => resolve()));
    // An application record that says DTLS 1.0, and a datagram that is not DTLS at all: 20 of each.
    const badVersion = Buffer.from('17feff000100000000000100017a', 'hex');
    for (let i = 0; i < 20; i++) {
      sender.send(badVersion, securePort, '127.0.0.1');
      sender.send(Buffer.from('not dtls'), securePort, '127.0.0.1');
    }
    const api = helper.request();
    await waitFor(
      () => {
        const dropped = config.server.dtlsDroppedRecords();
        return dropped['bad-version'] === 20 && dropped.malformed === 20;
      },
      5000,
      'the drops counted',
    );
    const counts = (await api.get('/lwm2m/servers/srv/devices').expect(200)).body.counts;
    assert.deepEqual(counts.dtlsDropped, { 'bad-version': 20, malformed: 20 });
    const port = (sender.address() as { port: number }).port;
    assert.deepEqual(warnings.sort(), [
      `DTLS record from 127.0.0.1:${port} dropped (bad-version): record version is not DTLS 1.2`,
      `DTLS record from 127.0.0.1:${port} dropped (malformed): not a DTLS record, or truncated`,
    ]);
  });
});
