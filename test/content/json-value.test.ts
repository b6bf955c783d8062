/** The JSON value writer shared by SenML JSON and OMA JSON: numbers exact, bytes per format, null for deletions. */
import { strict as assert } from 'node:assert';
import { jsonValueText } from '../../lib/content/json-value';
import { ContentCodecError } from '../../lib/content/types';

describe('content: JSON record values', function () {
  it('writes numbers, bigints, booleans and strings the same for both formats', function () {
    for (const bytesAs of ['base64', 'base64url'] as const) {
      assert.equal(jsonValueText(2 ** 60, bytesAs, 'W', 'record', 0), '1152921504606846976');
      assert.equal(jsonValueText(-1.5, bytesAs, 'W', 'record', 0), '-1.5');
      assert.equal(jsonValueText(12345678901234567890n, bytesAs, 'W', 'record', 0), '12345678901234567890');
      assert.equal(jsonValueText(false, bytesAs, 'W', 'record', 0), 'false');
      assert.equal(jsonValueText('a"b', bytesAs, 'W', 'record', 0), '"a\\"b"');
    }
  });

  it('writes bytes as base64 (OMA JSON) or unpadded base64url (SenML JSON)', function () {
    const bytes = Buffer.from([0xfb, 0xff, 0xfe, 0x01]);
    assert.equal(jsonValueText(bytes, 'base64', 'W', 'entry', 0), '"+//+AQ=="');
    assert.equal(jsonValueText(bytes, 'base64url', 'W', 'record', 0), '"-__-AQ"');
  });

  it('writes null for a deletion record and refuses what JSON cannot hold with 4.06', function () {
    assert.equal(jsonValueText(null, 'base64url', 'W', 'record', 0), 'null');
    assert.throws(
      () => jsonValueText(Number.NaN, 'base64', 'LwM2M JSON', 'entry', 2),
      (err: unknown) =>
        err instanceof ContentCodecError && err.coapCode === '4.06' && /LwM2M JSON: entry 2: NaN/.test(err.message),
    );
  });
});
