/**
 * Values shared between observations (issue 18's memory per device): equal values give the same frozen object, and
 * anything that cannot be shared safely is left as it is.
 */
import { strict as assert } from 'node:assert';
import { LwM2mPath } from '../../lib/model/path';
import { sharedObserveRequest, sharedOwners, sharedPaths } from '../../lib/server/observation-sharing';

describe('values shared between observations', function () {
  it('one-path lists: one frozen list per path; a composite list as it is', function () {
    const path = LwM2mPath.parse('/3303/0/5700');
    const first = sharedPaths([path]);
    assert.equal(sharedPaths([path]), first);
    assert.ok(Object.isFrozen(first));
    assert.deepEqual(first, [path]);
    const composite = [path, LwM2mPath.parse('/3/0/9')];
    assert.equal(sharedPaths(composite), composite);
  });

  it('owner lists: equal lists (same order) share one frozen copy, the caller keeps its own array', function () {
    const mine = ['node-a', 'node-b'];
    const shared = sharedOwners(mine);
    assert.notEqual(shared, mine);
    assert.equal(sharedOwners(['node-a', 'node-b']), shared);
    assert.notEqual(sharedOwners(['node-b', 'node-a']), shared);
    assert.ok(Object.isFrozen(shared));
    mine.push('node-c');
    assert.deepEqual(shared, ['node-a', 'node-b']);
  });

  it('Observe requests: plain GETs with equal fields share one; a body, token or options are never shared', function () {
    const request = () => ({
      method: 'GET' as const,
      pathSegments: ['3303', '0', '5700'],
      accept: 112,
      observe: 0 as const,
    });
    const first = sharedObserveRequest(request());
    assert.equal(sharedObserveRequest(request()), first);
    assert.ok(Object.isFrozen(first));
    assert.notEqual(sharedObserveRequest({ ...request(), accept: 110 }), first);
    assert.notEqual(sharedObserveRequest({ ...request(), query: ['pmin=5'] }), first);
    assert.notEqual(sharedObserveRequest({ ...request(), timeoutMs: 5000 }), first);
    const withToken = { ...request(), token: Buffer.from([1]) };
    assert.equal(sharedObserveRequest(withToken), withToken);
    assert.ok(!Object.isFrozen(withToken));
    const fetch = { ...request(), method: 'FETCH' as const, payload: Buffer.from('x') };
    assert.equal(sharedObserveRequest(fetch), fetch);
  });
});
