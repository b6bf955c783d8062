/**
 * The attribute table (LwM2M Core §5.1.2 / 1.2 §7.3.2) and the three readers of it: the server's Write-Attributes
 * check, the device side of Write-Attributes, and link-format parsing. The last describes pin the cases where the
 * three disagreed before they shared the table (each one a defect fix).
 */
import { strict as assert } from 'node:assert';
import { applyAttributeQuery } from '../../lib/client/attributes';
import { ClientError } from '../../lib/client/errors';
import { decodeDiscover } from '../../lib/content/link-format';
import {
  ATTRIBUTES_BY_VERSION,
  attributeSetProblem,
  attributeTargetProblem,
  attributeValueProblem,
  NOTIFICATION_ATTRIBUTE_NAMES,
  notificationAttribute,
  PROPERTY_RANGES,
} from '../../lib/model/attributes';
import { LwM2mPath } from '../../lib/model/path';
import type { ResourceDefinition } from '../../lib/model/types';
import { AttributeError, attributesToQuery } from '../../lib/server/attributes';
import { assertCodecError } from '../content/fixtures';

function spec(name: string) {
  const found = notificationAttribute(name);
  assert.ok(found, name);
  return found;
}

const temperature: ResourceDefinition = {
  id: 5700,
  name: 'Sensor Value',
  operations: 'R',
  multiple: false,
  mandatory: true,
  type: 'float',
};

describe('model: attribute table', function () {
  it('lists the attributes each LwM2M version defines', function () {
    assert.deepEqual(ATTRIBUTES_BY_VERSION['1.0'], ['pmin', 'pmax', 'gt', 'lt', 'st']);
    assert.deepEqual(ATTRIBUTES_BY_VERSION['1.1'], ['pmin', 'pmax', 'gt', 'lt', 'st', 'epmin', 'epmax']);
    assert.deepEqual(ATTRIBUTES_BY_VERSION['1.2'], NOTIFICATION_ATTRIBUTE_NAMES);
    assert.deepEqual(NOTIFICATION_ATTRIBUTE_NAMES, [
      'pmin',
      'pmax',
      'gt',
      'lt',
      'st',
      'epmin',
      'epmax',
      'edge',
      'con',
      'hqmax',
    ]);
    assert.equal(notificationAttribute('dim'), undefined);
    assert.deepEqual(PROPERTY_RANGES, { dim: [0, 255], ssid: [1, 65534] });
  });

  it('types and bounds the values', function () {
    for (const name of ['pmin', 'pmax', 'epmin', 'epmax']) {
      assert.equal(attributeValueProblem(spec(name), 0), undefined, name);
      assert.match(attributeValueProblem(spec(name), 1.5) ?? '', /whole number of seconds >= 0, got 1.5/, name);
      assert.match(attributeValueProblem(spec(name), -1) ?? '', /whole number of seconds >= 0/, name);
    }
    // hqmax counts queued notifications, not seconds.
    assert.match(attributeValueProblem(spec('hqmax'), 1.5) ?? '', /must be a whole number >= 0/);
    for (const name of ['edge', 'con']) {
      assert.equal(attributeValueProblem(spec(name), 1), undefined, name);
      assert.match(attributeValueProblem(spec(name), 2) ?? '', /must be 0 or 1/, name);
      assert.match(attributeValueProblem(spec(name), 0.5) ?? '', /must be 0 or 1/, name);
    }
    assert.equal(attributeValueProblem(spec('gt'), -40.5), undefined, 'gt may be negative (erratum, OMA #563)');
    assert.equal(attributeValueProblem(spec('lt'), -41), undefined);
    assert.equal(attributeValueProblem(spec('st'), 0.25), undefined);
    assert.match(attributeValueProblem(spec('st'), -0.25) ?? '', /must be >= 0/);
  });

  it('says where an attribute may be set', function () {
    for (const name of ['pmin', 'pmax', 'epmin', 'epmax', 'con', 'hqmax']) {
      assert.equal(attributeTargetProblem(spec(name), 1, undefined), undefined, name);
    }
    for (const name of ['gt', 'lt', 'st', 'edge']) {
      assert.match(attributeTargetProblem(spec(name), 2, undefined) ?? '', /applies to a resource/, name);
      assert.equal(attributeTargetProblem(spec(name), 4, undefined), undefined, `${name} on a resource instance`);
    }
    assert.equal(attributeTargetProblem(spec('gt'), 3, temperature), undefined);
    assert.match(attributeTargetProblem(spec('edge'), 3, temperature) ?? '', /needs a boolean resource/);
    assert.match(
      attributeTargetProblem(spec('st'), 3, { ...temperature, name: 'Units', type: 'string' }) ?? '',
      /needs a numeric resource; Units is string/,
    );
  });

  it('checks the rules between attributes; pmax 0 and epmax 0 mean "no maximum"', function () {
    assert.equal(attributeSetProblem({ pmin: 10, pmax: 10 }), undefined);
    assert.match(attributeSetProblem({ pmin: 10, pmax: 5 }) ?? '', /pmax \(5\) must not be less than pmin \(10\)/);
    assert.equal(attributeSetProblem({ pmin: 10, pmax: 0 }), undefined);
    assert.match(attributeSetProblem({ epmin: 10, epmax: 5 }) ?? '', /epmax/);
    assert.equal(attributeSetProblem({ epmin: 10, epmax: 0 }), undefined);
    assert.match(attributeSetProblem({ gt: 10, lt: 10 }) ?? '', /lt \(10\) must be less than gt/);
    assert.match(attributeSetProblem({ gt: 10, lt: 0, st: 5 }) ?? '', /lt \+ 2\*st/);
    assert.equal(attributeSetProblem({ gt: 10, lt: 0, st: 4.5, pmin: null }), undefined);
  });
});

describe('attributes: where server, device and link parsing used to disagree', function () {
  const resourcePath = LwM2mPath.parse('/3303/0/5700');

  it('server: pmax 0 (no maximum) goes with any pmin, as the device accepts it', function () {
    assert.deepEqual(attributesToQuery({ pmin: 10, pmax: 0 }, '1.0', 2), ['pmin=10', 'pmax=0']);
    assert.deepEqual(attributesToQuery({ epmin: 10, epmax: 0 }, '1.1', 2), ['epmin=10', 'epmax=0']);
    const device = applyAttributeQuery(undefined, ['pmin=10', 'pmax=0'], '1.0', resourcePath, temperature);
    assert.deepEqual(device, { pmin: 10, pmax: 0 });
  });

  it('server: removing gt/lt/st/edge on an object or instance is refused, as the device refuses it', function () {
    assert.throws(() => attributesToQuery({ gt: null }, '1.0', 2), /applies to a resource/);
    assert.throws(() => attributesToQuery({ edge: null }, '1.2', 1), AttributeError);
    assert.throws(
      () => applyAttributeQuery(undefined, ['gt'], '1.0', LwM2mPath.parse('/3303/0'), undefined),
      (err: unknown) => err instanceof ClientError && err.code === '4.00',
    );
    assert.deepEqual(attributesToQuery({ gt: null }, '1.0', 3, temperature), ['gt']);
  });

  it('device: values are decimal numbers only, as link-format parsing reads them', function () {
    for (const text of ['0x10', ' 5', '1e400', 'Infinity', '']) {
      assert.throws(
        () => applyAttributeQuery(undefined, [`pmin=${text}`], '1.0', resourcePath, temperature),
        /is not a number/,
        JSON.stringify(text),
      );
    }
    assert.throws(
      () => applyAttributeQuery(undefined, ['gt=1e400'], '1.0', resourcePath, temperature),
      /is not a number/,
    );
    assert.deepEqual(applyAttributeQuery(undefined, ['pmin=1e1', 'gt=-2.5'], '1.0', resourcePath, temperature), {
      pmin: 10,
      gt: -2.5,
    });
  });

  it('links: edge and con are 0 or 1, st is >= 0 and numbers are finite, as server and device check them', function () {
    assertCodecError(() => decodeDiscover('</3/0/5>;edge=2'), /edge=2 must be 0 or 1/);
    assertCodecError(() => decodeDiscover('</3/0>;con=3'), /con=3 must be 0 or 1/);
    assertCodecError(() => decodeDiscover('</3/0/7>;st=-1'), /st=-1 must be >= 0/);
    assertCodecError(() => decodeDiscover('</3/0/7>;gt=1e999'), /gt=1e999 is not a number/);
    assert.deepEqual(decodeDiscover('</3/0/7>;gt=-5;lt=-10.5;edge=0')[0].attributes, { gt: -5, lt: -10.5, edge: 0 });
  });
});
