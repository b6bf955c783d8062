/**
 * A store that fails while the server starts (a Redis outage during a redeploy): start() rejects with the store's
 * error and lets its socket go, instead of waiting for ever on a stop() that waits for the start in progress.
 */
import { strict as assert } from 'node:assert';
import dgram from 'node:dgram';
import { Lwm2mServer } from '../../lib/server/lwm2m-server';
import type { StoredObservation } from '../../lib/server/stores';
import { MemoryObservationStore } from '../../lib/server/memory-stores';

class FailingObservationStore extends MemoryObservationStore {
  override list(): Promise<StoredObservation[]> {
    return Promise.reject(new Error('observation store unreachable (test)'));
  }
}

/** A UDP port on 127.0.0.1 free now, or -1 when `port` cannot be bound (given 0: any free one). */
function bindable(port: number): Promise<number> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    socket.once('error', () => resolve(-1));
    socket.bind(port, '127.0.0.1', () => {
      const bound = socket.address().port;
      socket.close(() => resolve(bound));
    });
  });
}

describe('server: a store failing while it starts', function () {
  this.timeout(5000);

  it('start() rejects with the reason and the socket is closed again', async () => {
    const port = await bindable(0);
    const server = new Lwm2mServer({ address: '127.0.0.1', port, observationStore: new FailingObservationStore() });
    server.once('started', () => assert.fail('not started'));
    // Before: it waited for ever (its clean-up awaited the start in progress), holding the port.
    await assert.rejects(server.start(), /observation store unreachable \(test\)/);
    assert.equal(server.running, false);
    assert.equal(server.address, undefined);
    assert.equal(await bindable(port), port, 'the port is free again');
    await server.stop(); // and stopping again is harmless
  });
});
