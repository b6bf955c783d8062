import { strict as assert } from 'node:assert';
import { Lwm2mRequestError } from '../../lib/server/errors';
import { DEFAULT_MAX_WRITE_BYTES } from '../../lib/server/write-limit';
import { Bench } from '../client/helpers';
import { fastJob, firmwareDevice, firmwarePackage } from '../firmware/helpers';

const OPAQUE = 42;
const TEXT = 0;

/** A 'too-large' error naming the operation, the size and the limit. */
function tooLarge(operation: string, size: number | RegExp, limit: number) {
  return (err: unknown) => {
    assert.ok(err instanceof Lwm2mRequestError, String(err));
    assert.equal(err.code, 'too-large');
    assert.ok(err.message.startsWith(`${operation} `), err.message);
    const bytes = typeof size === 'number' ? String(size) : size.source;
    assert.match(
      err.message,
      new RegExp(`the value is ${bytes} bytes as .+, over the write size limit of ${limit} bytes`),
    );
    assert.match(err.message, /nothing was sent$/);
    return true;
  };
}

describe('the write size limit (Write, Write-Composite, Create)', function () {
  let bench: Bench;

  afterEach(async function () {
    await bench.close();
  });

  it('is 1 MiB by default: a bigger value is refused before anything is sent', async function () {
    bench = new Bench();
    await bench.startServer();
    assert.equal(bench.server.options.maxWriteBytes, DEFAULT_MAX_WRITE_BYTES);
    assert.equal(DEFAULT_MAX_WRITE_BYTES, 1024 * 1024);
    const device = await firmwareDevice(bench, 'big');
    const writes: unknown[] = [];
    device.on('write', (write) => writes.push(write));
    await assert.rejects(
      bench.server.write('big', '/5/0/0', Buffer.alloc(DEFAULT_MAX_WRITE_BYTES + 1), { format: OPAQUE }),
      tooLarge('Write /5/0/0', DEFAULT_MAX_WRITE_BYTES + 1, DEFAULT_MAX_WRITE_BYTES),
    );
    // The device answered a read since: a write sent before it would have been seen by now.
    await bench.server.read('big', '/5/0/3');
    assert.deepEqual(writes, []);
  });

  it("a server's own limit and a call's own; the firmware push is not held to it", async function () {
    bench = new Bench();
    await bench.startServer({ maxWriteBytes: 4096 });
    const device = await firmwareDevice(bench, 'fw');
    const writes: string[] = [];
    device.on('write', (write: { path: string }) => writes.push(write.path));
    const image = firmwarePackage('2.0.0', 6000);

    await assert.rejects(
      bench.server.write('fw', '/5/0/0', image, { format: OPAQUE }),
      tooLarge('Write /5/0/0', 6000, 4096),
    );
    await assert.rejects(
      bench.server.write('fw', '/3/0/14', 'x'.repeat(4097), { format: TEXT }),
      tooLarge('Write /3/0/14', 4097, 4096),
    );
    await assert.rejects(
      bench.server.create('fw', '/3303', { 5750: 'y'.repeat(5000) }, { instanceId: 3 }),
      tooLarge('Create /3303', /\d+/, 4096),
    );
    await assert.rejects(
      bench.server.writeComposite('fw', { '/3/0/14': '+01:00', '/3/0/15': 'z'.repeat(5000) }),
      tooLarge('Write-Composite /3/0/14,/3/0/15', /\d+/, 4096),
    );
    assert.deepEqual(writes, [], 'nothing sent');

    // Within the limit, or with a call's own: written.
    await bench.server.write('fw', '/3/0/14', 'x'.repeat(4096), { format: TEXT });
    assert.equal(device.get('/3/0/14'), 'x'.repeat(4096));
    await bench.server.write('fw', '/3/0/15', 'w'.repeat(5000), { format: TEXT, maxWriteBytes: 8192 });
    assert.equal(device.get('/3/0/15'), 'w'.repeat(5000));

    // The firmware job pushes its 6000 bytes to /5/0/0 all the same.
    const result = await fastJob(bench.server, {
      endpoint: 'fw',
      image,
      expectedFirmwareVersion: '2.0.0',
      method: 'push',
    }).run();
    assert.equal(result.ok, true);
    assert.equal(device.get('/3/0/3'), '2.0.0');
  });
});
