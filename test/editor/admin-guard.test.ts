import { strict as assert } from 'node:assert';
import { allowsEveryOrigin, corsAllows, refusal } from '../../nodes/shared/admin-guard';

/** The cross-site rules of the device browser's routes, without a Node-RED: hosts, ports, the user's CORS origins. */
describe('device browser cross-site guard (rules)', function () {
  const post = (headers: Record<string, string>) => ({
    method: 'POST',
    headers: { 'content-type': 'application/json', host: 'nr.example:1880', ...headers },
  });

  it("matches the Origin's host and port to Host, a default port with the Origin's scheme", async function () {
    assert.equal(await refusal(post({ origin: 'http://nr.example:1880' }), false), undefined);
    assert.equal(await refusal(post({ origin: 'http://NR.example:1880' }), false), undefined);
    // Behind a proxy that ends TLS and keeps Host: the page is https, the request reaches us over http.
    assert.equal(await refusal(post({ origin: 'https://nr.example', host: 'nr.example' }), false), undefined);
    assert.equal(await refusal(post({ origin: 'https://nr.example', host: 'nr.example:443' }), false), undefined);
    assert.equal((await refusal(post({ origin: 'https://nr.example:8443', host: 'nr.example' }), false))?.status, 403);
    assert.equal((await refusal(post({ origin: 'http://nr.example.evil.test:1880' }), false))?.status, 403);
    assert.equal((await refusal(post({ origin: 'file://' }), false))?.status, 403);
    assert.equal((await refusal(post({ referer: 'not a url' }), false))?.status, 403);
    assert.equal((await refusal(post({ origin: 'http://nr.example:1880', host: '' }), false))?.status, 403);
  });

  it('takes application/json with parameters, refuses other bodies on POST only', async function () {
    assert.equal(await refusal(post({ 'content-type': 'Application/JSON; charset=utf-8' }), false), undefined);
    assert.equal((await refusal(post({ 'content-type': 'application/jsonx' }), false))?.status, 415);
    assert.equal(
      (await refusal({ method: 'POST', headers: {} }, false))?.error.includes('without a Content-Type'),
      true,
    );
    assert.equal(await refusal({ method: 'DELETE', headers: {} }, false), undefined);
    assert.equal(await refusal({ method: 'GET', headers: { 'content-type': 'text/plain' } }, false), undefined);
  });

  it("follows the cors package's origin option: strings, lists, RegExps, '*', booleans, functions", async function () {
    const origin = 'https://dash.example';
    assert.equal(await corsAllows(origin, origin), true);
    assert.equal(await corsAllows(origin, 'https://other.example'), false);
    assert.equal(await corsAllows(origin, ['https://a.example', /\.example$/]), true);
    assert.equal(await corsAllows(origin, '*'), true);
    assert.equal(await corsAllows(origin, undefined), true, 'cors defaults to *');
    assert.equal(await corsAllows(origin, true), true);
    assert.equal(await corsAllows(origin, false), false);
    const decide = (allow: unknown) => (_origin: string, callback: (err: unknown, allow?: unknown) => void) =>
      callback(null, allow);
    assert.equal(await corsAllows(origin, decide(true)), true);
    assert.equal(await corsAllows(origin, decide([origin])), true);
    assert.equal(await corsAllows(origin, decide(false)), false);
    assert.equal(await corsAllows(origin, decide(undefined)), false);
    // Allowed by the user's CORS: a foreign origin passes; 'null' never does.
    assert.equal(await refusal(post({ origin }), [origin]), undefined);
    assert.equal((await refusal(post({ origin: 'null' }), '*'))?.status, 403);
    assert.equal(allowsEveryOrigin({ origin: '*' }), true);
    assert.equal(allowsEveryOrigin({}), true);
    assert.equal(allowsEveryOrigin({ origin: [origin] }), false);
    assert.equal(allowsEveryOrigin(undefined), false);
  });
});
