import { strict as assert } from 'node:assert';
import { CookieFlooder } from './flooder';
import {
  PSK_IDENTITY,
  PSK_KEY,
  PeerProcess,
  hasBinary,
  opensslPskClient,
  startEchoServer,
  waitFor,
  type EchoServer,
} from './helpers';

const pskKey = (identity: string) => (identity === PSK_IDENTITY ? PSK_KEY : undefined);
/** As the LwM2M server's DTLS listener sets it (lib/server/listeners.ts). */
const PER_ADDRESS = 500;

/**
 * A flood of completed cookie exchanges from one address must not lock an honest client behind the same
 * address out: half-open handshakes have their own budget, and a full one evicts its oldest entry.
 */
describe('DTLS half-open handshake flood from one address, with openssl s_client from the same address', function () {
  this.timeout(90_000);
  let server: EchoServer | undefined;
  let flooder: CookieFlooder | undefined;
  let client: PeerProcess | undefined;

  before(function () {
    if (!hasBinary('openssl')) this.skip();
  });
  afterEach(async () => {
    await client?.stop();
    await flooder?.stop();
    await server?.close();
  });

  it('openssl s_client -dtls1_2 (PSK) completes its handshakes while the flood goes on', async () => {
    const echo = await startEchoServer({ pskKey, maxHandshakesPerAddress: PER_ADDRESS });
    server = echo;
    const stats = echo.transport.stats;
    // Paced, so that the test does not measure this machine's speed: the budget is full within 2 s and then
    // turns over every 1.25 s, while a handshake from here needs a few milliseconds.
    flooder = new CookieFlooder(server.port, { ratePerSecond: 400, sockets: PER_ADDRESS + 200 });
    await flooder.start();
    await waitFor(() => stats.handshakesEvicted > 0, 30_000, 'the flood to fill the per-address budget');
    for (let attempt = 0; attempt < 3; attempt++) {
      const sessions: number = echo.sessions.length;
      const floodBefore = stats.handshakesStarted;
      const openssl: PeerProcess = opensslPskClient(server.port, { extra: ['-ign_eof'] });
      client = openssl;
      await waitFor(() => echo.sessions.length > sessions || openssl.exited, 30_000, 'the honest handshake');
      assert.deepEqual(echo.sessions[sessions]?.security, { mode: 'psk', identity: PSK_IDENTITY }, openssl.output);
      await waitFor(() => /Cipher is PSK-AES128-CCM8/.test(openssl.output), 10_000, 'the cipher on the client');
      await openssl.stop();
      client = undefined;
      assert.ok(stats.handshakesStarted > floodBefore, 'the flood went on meanwhile');
    }
    assert.equal(stats.handshakesRefused, 0);
    assert.ok(echo.transport.handshakeCount <= PER_ADDRESS);
    assert.ok(stats.handshakesEvicted >= stats.handshakesStarted - PER_ADDRESS - 3);
  });
});
