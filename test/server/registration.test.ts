import { strict as assert } from 'node:assert';
import { attributesToQuery, AttributeError, normaliseAttributes } from '../../lib/server/attributes';
import { ExpiryWheel } from '../../lib/server/expiry-wheel';
import { executeArguments } from '../../lib/server/lwm2m-server';
import { RegistrationError, parseObjectLinks, parseRegistrationQuery } from '../../lib/server/registration';

describe('registration query', function () {
  it('reads a 1.0 Register with a queue binding', function () {
    const query = parseRegistrationQuery(['ep=dev', 'lt=300', 'b=UQ', 'sms=+123'], true);
    assert.equal(query.endpoint, 'dev');
    assert.equal(query.lifetime, 300);
    assert.equal(query.lwm2mVersion, '1.0');
    assert.equal(query.binding, 'UQ');
    assert.equal(query.queueMode, true);
    assert.equal(query.smsNumber, '+123');
  });

  it('reads the 1.1 Q flag and keeps 1.2 as 1.2', function () {
    const query = parseRegistrationQuery(['ep=dev', 'lwm2m=1.2', 'b=UT', 'Q'], true);
    assert.equal(query.lwm2mVersion, '1.2');
    assert.equal(query.binding, 'UT');
    assert.equal(query.queueMode, true);
  });

  it('accepts a 1.0-style UQ binding from a 1.1 device as U + queue mode', function () {
    const query = parseRegistrationQuery(['ep=dev', 'lwm2m=1.1', 'b=UQ'], true);
    assert.equal(query.binding, 'U');
    assert.equal(query.queueMode, true);
  });

  it('rejects what a device must not send, with the code to answer', function () {
    const cases: [string[], string][] = [
      [['ep=dev', 'lwm2m=1.3'], '4.12'],
      [['ep=dev', 'lt=abc'], '4.00'],
      [['ep=dev', 'lt=0'], '4.00'],
      [['ep=dev', 'b=X'], '4.00'],
      [['ep=dev', 'Q'], '4.00'], // Q is not 1.0
      [['ep=dev', 'lwm2m=1.1', 'b=UU'], '4.00'],
      [['ep='], '4.00'],
    ];
    for (const [query, code] of cases) {
      assert.throws(
        () => parseRegistrationQuery(query, true),
        (err: RegistrationError) => err instanceof RegistrationError && err.code === code,
        query.join('&'),
      );
    }
    assert.throws(() => parseRegistrationQuery(['ep=other'], false, '1.1'), RegistrationError);
  });

  it('keeps unknown parameters as additional attributes', function () {
    const query = parseRegistrationQuery(['ep=dev', 'apn=iot'], true);
    assert.deepEqual(query.additionalAttributes, { apn: 'iot' });
  });
});

describe('registration links', function () {
  it('reads objects, instances and versions', function () {
    const links = parseObjectLinks(Buffer.from('</1/0>,</3/0>,</3303>;ver=1.1,</3303/0>,</3303/1>'));
    assert.equal(links.rootPath, '');
    assert.deepEqual(links.objects[1], { instances: [0] });
    assert.deepEqual(links.objects[3303], { instances: [0, 1], version: '1.1' });
  });

  it('honours an alternate root path and the ct list', function () {
    const links = parseObjectLinks(Buffer.from('</lwm2m>;rt="oma.lwm2m";ct="60 110",</lwm2m/3/0>,</other>'));
    assert.equal(links.rootPath, '/lwm2m');
    assert.deepEqual(links.supportedContentFormats, [60, 110]);
    assert.deepEqual(Object.keys(links.objects), ['3']);
  });

  it('reads a single ct value', function () {
    assert.deepEqual(
      parseObjectLinks(Buffer.from('</>;rt="oma.lwm2m";ct=11543,</3/0>')).supportedContentFormats,
      [11543],
    );
  });

  it('rejects object links with bad ids', function () {
    assert.throws(() => parseObjectLinks(Buffer.from('</99999/0>')), RegistrationError);
    assert.throws(() => parseObjectLinks(Buffer.from('</3/abc>')), RegistrationError);
  });
});

describe('notification attributes', function () {
  const numeric = {
    id: 5700,
    name: 'Sensor Value',
    operations: 'R' as const,
    multiple: false,
    mandatory: true,
    type: 'float' as const,
  };
  const text = { ...numeric, id: 5701, name: 'Sensor Units', type: 'string' as const };

  it('builds the Write-Attributes query', function () {
    assert.deepEqual(attributesToQuery({ pmin: 10, pmax: 60, gt: 30.5, lt: 10, st: 1 }, '1.0', 3, numeric), [
      'pmin=10',
      'pmax=60',
      'gt=30.5',
      'lt=10',
      'st=1',
    ]);
    assert.deepEqual(attributesToQuery({ pmin: null }, '1.0', 2), ['pmin']);
  });

  it('gates attributes by LwM2M version', function () {
    assert.throws(() => attributesToQuery({ epmin: 1 }, '1.0', 3, numeric), /not part of LwM2M 1.0/);
    assert.deepEqual(attributesToQuery({ epmin: 1, epmax: 5 }, '1.1', 3, numeric), ['epmin=1', 'epmax=5']);
    assert.throws(() => attributesToQuery({ edge: 1 }, '1.1', 3, numeric), /not part of LwM2M 1.1/);
    assert.throws(() => attributesToQuery({ bogus: 1 } as never, '1.2', 3), /unknown attribute/);
  });

  it('checks gt/lt/st rules', function () {
    assert.throws(() => attributesToQuery({ gt: 10, lt: 20 }, '1.0', 3, numeric), /lt \(20\) must be less than gt/);
    assert.throws(() => attributesToQuery({ gt: 20, lt: 10, st: 5 }, '1.0', 3, numeric), /lt \+ 2\*st/);
    assert.throws(() => attributesToQuery({ gt: 20 }, '1.0', 3, text), /numeric resource/);
    assert.throws(() => attributesToQuery({ gt: 20 }, '1.0', 2), /applies to a resource/);
    assert.throws(() => attributesToQuery({ pmin: 20, pmax: 10 }, '1.0', 2), /pmax/);
    assert.throws(() => attributesToQuery({ pmin: -1 }, '1.0', 2), AttributeError);
  });

  it('normalises form strings', function () {
    assert.deepEqual(normaliseAttributes({ pmin: '10', pmax: '', gt: ' 2.5 ' }), { pmin: 10, gt: 2.5 });
    assert.throws(() => normaliseAttributes({ pmin: 'soon' }), /must be a number/);
  });
});

describe('execute arguments', function () {
  it('formats lists and objects as LwM2M arguments', function () {
    assert.equal(executeArguments(undefined), '');
    assert.equal(executeArguments("0='on'"), "0='on'");
    assert.equal(executeArguments(['on', null]), "0='on',1");
    assert.equal(executeArguments({ 2: 'x', 5: null }), "2='x',5");
    assert.throws(() => executeArguments({ 12: 'x' }), /digits/);
    assert.throws(() => executeArguments(["it's"]), /quote/);
  });
});

describe('expiry wheel', function () {
  it('returns ids once their second is due', function () {
    const wheel = new ExpiryWheel();
    wheel.schedule('a', 10_500);
    wheel.schedule('b', 12_000);
    assert.deepEqual(wheel.takeDue(10_000), []);
    assert.deepEqual(wheel.takeDue(11_000), ['a']);
    assert.deepEqual(wheel.takeDue(11_500), []);
    assert.deepEqual(wheel.takeDue(12_000), ['b']);
  });

  it('moves an id rescheduled by an Update instead of leaving it in its old bucket', function () {
    const wheel = new ExpiryWheel();
    wheel.schedule('a', 10_000);
    wheel.schedule('b', 10_000);
    wheel.reschedule('a', 10_000, 20_000);
    wheel.reschedule('b', 10_000, 9_600); // the same second: stays
    assert.deepEqual(wheel.takeDue(10_000), ['b']);
    assert.deepEqual(wheel.takeDue(19_000), [], 'nothing left behind in the old bucket');
    assert.deepEqual(wheel.takeDue(20_000), ['a']);
    wheel.reschedule('c', 5_000, 30_000); // never scheduled before: just scheduled
    assert.deepEqual(wheel.takeDue(30_000), ['c']);
  });
});
