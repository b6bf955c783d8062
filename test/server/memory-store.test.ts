import { strict as assert } from 'node:assert';
import { isSupportedFormat } from '../../lib/content';
import { ContentFormat } from '../../lib/content/types';
import { ObjectModel } from '../../lib/model/object-model';
import { LwM2mPath } from '../../lib/model/path';
import { candidateFormats, memoCandidateFormats } from '../../lib/server/content-negotiation';
import type { Lwm2mVersion, Registration } from '../../lib/server/registration';
import { parseObjectLinks } from '../../lib/server/registration';
import type { StoredObservation } from '../../lib/server/stores';
import { MemoryObservationStore, MemoryRegistrationStore } from '../../lib/server/memory-stores';
import { flatString } from '../../lib/transport/peer';

function registration(
  id: string,
  endpoint: string,
  peerKey: string,
  version: Lwm2mVersion = '1.1',
  formats: number[] = [],
): Registration {
  return {
    id,
    endpoint,
    lifetime: 300,
    lwm2mVersion: version,
    binding: 'U',
    queueMode: false,
    address: peerKey.split(':')[0],
    port: Number(peerKey.split(':')[1]),
    peerKey,
    rootPath: '',
    objects: {},
    supportedContentFormats: formats,
    additionalAttributes: {},
    registeredAt: 1,
    lastUpdateAt: 1,
  };
}

function observation(id: string, registrationId: string, token: string): StoredObservation {
  return {
    id,
    registrationId,
    endpoint: 'dev',
    path: '/3303/0/5700',
    token,
    peerKey: '10.0.0.1:5683',
    owners: ['node'],
    createdAt: 1,
  };
}

describe('memory registration store', function () {
  it('finds a registration by id, endpoint (with and without a promise) and peer, across replace and update', async function () {
    const store = new MemoryRegistrationStore();
    const first = registration('a', 'dev', '10.0.0.1:5683');
    assert.equal(await store.add(first), undefined);
    assert.equal(store.getByEndpointSync('dev'), first);
    assert.equal(await store.getByEndpoint('dev'), first);
    assert.equal(await store.getByPeer('10.0.0.1:5683'), first);

    const second = registration('b', 'dev', '10.0.0.2:5683');
    assert.equal(await store.add(second), first, 'a new Register replaces the old one');
    assert.equal(await store.getById('a'), undefined);
    assert.equal(await store.getByPeer('10.0.0.1:5683'), undefined);
    assert.equal(store.getByEndpointSync('dev'), second);

    const moved = { ...second, address: '10.0.0.3', peerKey: '10.0.0.3:5683' };
    assert.equal(await store.update(moved), true);
    assert.equal(store.getByEndpointSync('dev'), moved);
    assert.equal(await store.getByPeer('10.0.0.2:5683'), undefined);
    assert.equal(await store.getByPeer('10.0.0.3:5683'), moved);
    assert.equal(await store.update(registration('gone', 'other', '10.0.0.9:5683')), false);

    assert.equal(await store.remove('b'), moved);
    assert.equal(store.getByEndpointSync('dev'), undefined);
    assert.equal(await store.getByEndpoint('dev'), undefined);
    assert.equal(await store.size(), 0);
  });
});

describe('memory observation store', function () {
  it('lists, removes and re-adds the observations of a registration, one or several', async function () {
    const store = new MemoryObservationStore();
    await store.add(observation('o1', 'r1', 'aa'));
    assert.deepEqual(
      (await store.listByRegistration('r1')).map((o) => o.id),
      ['o1'],
    );
    await store.add(observation('o1', 'r1', 'aa')); // the same one again (update)
    await store.add(observation('o2', 'r1', 'bb'));
    await store.add(observation('o3', 'r1', 'cc'));
    await store.add(observation('p1', 'r2', 'dd'));
    assert.deepEqual(
      (await store.listByRegistration('r1')).map((o) => o.id),
      ['o1', 'o2', 'o3'],
    );
    assert.equal((await store.getByToken('10.0.0.1:5683', 'bb'))?.id, 'o2');
    await store.remove('o2');
    assert.equal(await store.getByToken('10.0.0.1:5683', 'bb'), undefined);
    assert.deepEqual(
      (await store.listByRegistration('r1')).map((o) => o.id),
      ['o1', 'o3'],
    );
    assert.deepEqual(
      (await store.removeByRegistration('r1')).map((o) => o.id),
      ['o1', 'o3'],
    );
    assert.deepEqual(await store.listByRegistration('r1'), []);
    await store.remove('p1');
    assert.deepEqual(await store.listByRegistration('r2'), []);
    await store.add(observation('p2', 'r2', 'ee'));
    assert.deepEqual(
      (await store.listByRegistration('r2')).map((o) => o.id),
      ['p2'],
    );
    assert.deepEqual(
      (await store.list()).map((o) => o.id),
      ['p2'],
    );
  });
});

describe('memoised candidate formats', function () {
  it('gives what candidateFormats gives for every kind of device and target', function () {
    const model = ObjectModel.withBuiltins();
    const announcements: Array<[Lwm2mVersion, number[]]> = [
      ['1.0', []],
      ['1.0', [ContentFormat.SENML_CBOR]],
      ['1.1', []],
      ['1.2', []],
      ['1.1', [ContentFormat.SENML_JSON]],
      ['1.1', [ContentFormat.SENML_CBOR, ContentFormat.TLV]],
      ['1.1', [ContentFormat.TEXT, ContentFormat.SENML_JSON, ContentFormat.JSON]],
      ['1.2', [ContentFormat.LWM2M_CBOR, ContentFormat.SENML_CBOR, ContentFormat.SENML_JSON, ContentFormat.TLV]],
      ['1.1', [ContentFormat.TEXT]],
      ['1.1', [70000, ContentFormat.SENML_JSON]],
    ];
    const paths = ['/3', '/3/0', '/3/0/0', '/3/0/7', '/3/0/7/1', '/5/0/0', '/3303/0/5700', '/3/0/9', '/9999/0/1'];
    for (const [version, formats] of announcements) {
      // twice: built, then from the memo; and a second registration with an equal list (shared)
      for (const copy of [formats, formats, [...formats]]) {
        const device = registration('r', 'dev', '10.0.0.1:5683', version, copy);
        for (const text of paths) {
          const path = LwM2mPath.parse(text);
          const resource =
            path.objectId !== undefined && path.resourceId !== undefined
              ? model.getResource(path.objectId, path.resourceId)
              : undefined;
          assert.deepEqual(
            [...memoCandidateFormats(device, path, resource, isSupportedFormat)],
            candidateFormats(device, path, resource, isSupportedFormat),
            `${version} ct=${formats.join(' ')} ${text}`,
          );
        }
      }
    }
  });
});

describe('compact registration data', function () {
  it('keeps object versions and instances as parsed, in exact-size arrays', function () {
    const links = parseObjectLinks(Buffer.from('</1/0>,</3/0>,</3303>;ver=1.1,</3303/0>,</3303/1>,</5>;ver="1.0"'));
    assert.deepEqual(links.objects, {
      1: { instances: [0] },
      3: { instances: [0] },
      3303: { instances: [0, 1], version: '1.1' },
      5: { instances: [], version: '1.0' },
    });
    assert.deepEqual(Object.keys(links.objects[3303]), ['instances', 'version']);
  });

  it('shares one frozen object-link record between registrations that announce the same links', function () {
    const text = '</1/0>,</3/0>,</3303/0>;ver=1.1';
    const first = parseObjectLinks(Buffer.from(text));
    const second = parseObjectLinks(Buffer.from(` ${text} `)); // the same links, trimmed
    assert.equal(second.objects, first.objects);
    assert.ok(Object.isFrozen(first.objects) && Object.isFrozen(first.objects[3303].instances));
    assert.ok(Object.isFrozen(first.supportedContentFormats));
    assert.throws(() => {
      (first.objects[3303].instances as number[]).push(1);
    }, TypeError);
    const other = parseObjectLinks(Buffer.from('</1/0>,</3/0>,</3303/1>'));
    assert.notEqual(other.objects, first.objects);
    assert.deepEqual(other.objects[3303], { instances: [1] });
    assert.deepEqual(first.objects[3303], { instances: [0], version: '1.1' }, 'unchanged by the other parse');
  });

  it('flattens strings without changing them', function () {
    for (const text of [
      'short',
      'a'.repeat(5) + 'b'.repeat(20),
      'dev-' + 'é'.repeat(10) + '-x',
      'ünïcødé ✓ ' + '名前'.repeat(8),
    ]) {
      assert.equal(flatString(text), text);
    }
  });
});
