import { strict as assert } from 'node:assert';
import { bootstrapConfigToPlain, parseBootstrapBatch } from '../../lib/bootstrap/batch';

describe('bootstrap batches (entries and manufacturing CSV)', function () {
  it('reads entries and CSV lines into checked configurations', function () {
    const [entry] = parseBootstrapBatch({
      endpoint: 'sensor-*',
      servers: [{ shortServerId: 3, uri: 'coap://dm.example.com:5683', securityMode: 'nosec' }],
    });
    assert.equal(entry.key, 'sensor-*');
    assert.equal(entry.config.servers[0].shortServerId, 3);

    const csv = parseBootstrapBatch(
      'endpoint,serverUri,pskKey,lifetime,binding\n# batch 7\nv-1,coaps://dm:5684,a0a1a2a3,600,UQ\n\nv-2,coap://dm:5683,,,\n',
    );
    assert.deepEqual(
      csv.map((item) => bootstrapConfigToPlain(item.key, item.config, true)),
      [
        {
          endpoint: 'v-1',
          servers: [
            {
              shortServerId: 1,
              uri: 'coaps://dm:5684',
              securityMode: 'psk',
              pskIdentity: 'v-1',
              pskKey: 'a0a1a2a3',
              lifetime: 600,
              binding: 'UQ',
            },
          ],
        },
        {
          endpoint: 'v-2',
          servers: [{ shortServerId: 1, uri: 'coap://dm:5683', securityMode: 'nosec', lifetime: 86400, binding: 'U' }],
        },
      ],
    );
    assert.equal(bootstrapConfigToPlain(csv[0].key, csv[0].config).servers instanceof Array, true);
    assert.equal(
      (bootstrapConfigToPlain(csv[0].key, csv[0].config).servers as Array<Record<string, unknown>>)[0].pskKey,
      undefined,
    );
  });

  it('names the line, entry and field at fault', function () {
    const cases: Array<[unknown, RegExp]> = [
      ['endpoint,serverUri\na,coap://x:5683\na,coap://y:5683', /line 3: endpoint "a" appears twice/],
      ['endpoint,serverUri,colour\na,coap://x', /unknown CSV column colour/],
      ['serverUri\ncoap://x', /header line with at least endpoint,serverUri/],
      ['endpoint,serverUri\n,coap://x', /line 2: the endpoint is missing/],
      ['endpoint,serverUri,securityMode\na,coap://x:5683,psk', /line 2 \(a\): servers\[0\]/],
      [[{ servers: [] }], /entry 1: needs an endpoint name/],
      [[42], /entry 1: must be an object/],
    ];
    for (const [input, message] of cases) assert.throws(() => parseBootstrapBatch(input), message);
  });
});
