/**
 * The client's small parts on their own: named timers, the lifecycle's waiters, and the choice of
 * content formats (the facade's tests cover them through the protocol as well).
 */
import { strict as assert } from 'node:assert';
import { ClientError } from '../../lib/client';
import { ClientFormats } from '../../lib/client/formats';
import { ClientLifecycle } from '../../lib/client/lifecycle';
import { ClientTimers } from '../../lib/client/timers';
import { ContentFormat } from '../../lib/content/types';
import { LwM2mPath } from '../../lib/model/path';
import type { LwM2mNode, ResourceDefinition } from '../../lib/model/types';

describe('client: parts', function () {
  describe('ClientTimers', function () {
    it('keeps one timer per name, reports what a timer throws, and stops all but those kept', async function () {
      const errors: Error[] = [];
      const timers = new ClientTimers((err) => errors.push(err));
      const ran: string[] = [];
      timers.set('a', 5, () => ran.push('first'));
      timers.set('a', 5, () => ran.push('second'));
      timers.set('b', 5, () => {
        throw new Error('boom');
      });
      timers.set('c', 5, () => ran.push('c'));
      timers.set('kept', 5, () => ran.push('kept'));
      assert.ok(timers.has('a'));
      timers.clear('c');
      // Set last with a longer delay: it runs after every timer above (Node runs timers in due-time order).
      await new Promise<void>((resolve) => timers.set('barrier', 10, resolve));
      assert.deepEqual(ran.sort(), ['kept', 'second']);
      assert.deepEqual(
        errors.map((e) => e.message),
        ['boom'],
      );
      assert.equal(timers.has('a'), false, 'a timer that ran is forgotten');
      timers.set('x', 5, () => ran.push('x'));
      timers.set('y', 5, () => ran.push('y'));
      timers.clearAll(['y']);
      await new Promise<void>((resolve) => timers.set('barrier', 10, resolve));
      assert.deepEqual(ran.sort(), ['kept', 'second', 'y']);
    });
  });

  describe('ClientLifecycle', function () {
    it('resolves waiters once registered, rejects them when settled with an error or when stopped', async function () {
      const lifecycle = new ClientLifecycle('dev');
      await assert.rejects(lifecycle.whenRegistered(), /dev is stopped/);
      lifecycle.state = 'registering';
      const first = lifecycle.whenRegistered();
      lifecycle.state = 'registered';
      lifecycle.settleWaiters();
      await first;
      await lifecycle.whenRegistered();
      lifecycle.state = 'registering';
      const second = lifecycle.whenRegistered();
      lifecycle.settleWaiters(new Error('gave up'));
      await assert.rejects(second, /gave up/);
    });
  });

  describe('ClientFormats', function () {
    const single: ResourceDefinition = {
      id: 5700,
      name: 'Sensor Value',
      operations: 'R',
      multiple: false,
      mandatory: true,
      type: 'float',
    };

    it('announces the preferred format in 1.1 and every format in 1.2', function () {
      assert.deepEqual(new ClientFormats('1.1', undefined).announced, [ContentFormat.SENML_JSON]);
      assert.deepEqual(new ClientFormats('1.2', [ContentFormat.SENML_CBOR, ContentFormat.TLV]).announced, [
        ContentFormat.SENML_CBOR,
        ContentFormat.TLV,
      ]);
      assert.equal(new ClientFormats('1.0', undefined).multiFormat, ContentFormat.TLV);
      assert.throws(() => new ClientFormats('1.1', [4242]), /content format 4242 is not supported/);
    });

    it('answers one value in text, more in the preferred format, refuses what it does not speak', function () {
      const formats = new ClientFormats('1.1', undefined);
      const value: LwM2mNode = { kind: 'resource', id: 5700, type: 'float', value: 21.5 };
      const instance: LwM2mNode = { kind: 'instance', id: 0, resources: new Map() };
      assert.equal(formats.responseFormat(value, undefined), ContentFormat.TEXT);
      assert.equal(formats.responseFormat(instance, undefined), ContentFormat.SENML_JSON);
      assert.throws(
        () => formats.responseFormat(value, ContentFormat.OLD_TLV),
        (err: unknown) => err instanceof ClientError && err.code === '4.06',
      );
      assert.equal(formats.requestFormat(undefined, LwM2mPath.parse('/3303/0/5700'), single), ContentFormat.TEXT);
      assert.equal(formats.requestFormat(undefined, LwM2mPath.parse('/3303/0'), undefined), ContentFormat.SENML_JSON);
      assert.throws(
        () => formats.requestFormat(ContentFormat.OLD_JSON, LwM2mPath.parse('/3303/0'), undefined),
        (err: unknown) => err instanceof ClientError && err.code === '4.15',
      );
      assert.equal(formats.compositeFormat(undefined, '4.15'), ContentFormat.SENML_CBOR);
      assert.throws(
        () => formats.compositeFormat(ContentFormat.TLV, '4.06'),
        (err: unknown) => err instanceof ClientError && err.code === '4.06',
      );
    });
  });
});
