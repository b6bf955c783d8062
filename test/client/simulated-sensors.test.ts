/** The simulator's IPSO objects behave like installed sensors: what they are for, units, ranges, slow changes. */
import { strict as assert } from 'node:assert';
import { Lwm2mClient } from '../../lib/client';
import { DEFAULT_CHANGE_EVERY_MS, parseCommandLine } from '../../lib/client/cli';
import { IPSO_IDS } from '../../lib/client/objects';
import { sensorProfile } from '../../lib/client/objects/ipso';
import { seededRandom } from '../../lib/transport/memory';

/** A device that is never started: its objects and simulation work without a server. */
function device(objects: Array<number | string>, seed = 7): Lwm2mClient {
  return new Lwm2mClient({
    endpointName: 'sim-test',
    serverUri: 'coap://127.0.0.1:9',
    objects,
    random: seededRandom(seed),
  });
}

const number = (client: Lwm2mClient, path: string): number => {
  const value = client.get(path);
  assert.equal(typeof value, 'number', `${path} is a number (${String(value)})`);
  return value as number;
};

describe('simulated IPSO objects (lwm2m-sim, lwm2m-device)', function () {
  it('every one says what it is used for (5750); every sensor has its units, a measuring range and a reading in it', function () {
    for (const id of IPSO_IDS) {
      if (id === 3425) continue; // the irrigation valve has no Application Type
      const client = device([id]);
      const use = client.get(`/${id}/0/5750`);
      assert.ok(typeof use === 'string' && use.trim() !== '', `/${id}/0/5750 names what it is for (${String(use)})`);
      if (sensorProfile(id, () => false) === undefined) continue;
      const units = client.get(`/${id}/0/5701`);
      assert.ok(typeof units === 'string' && units !== '', `/${id}/0/5701 has units`);
      const [low, high, value] = [5603, 5604, 5700].map((resource) => number(client, `/${id}/0/${resource}`));
      assert.ok(low < high && low <= value && value <= high, `/${id}/0: ${value} in ${low}..${high}`);
    }
    assert.equal(device([3300]).get('/3300/0/5751'), 'NDIR CO2', 'a Generic Sensor says its Sensor Type');
  });

  it('a sensor reading changes a little per step and stays near its typical value, inside its range', function () {
    for (const id of IPSO_IDS) {
      const profile = sensorProfile(id, () => false);
      if (profile === undefined) continue;
      const client = device([id], id);
      const path = `/${id}/0/5700`;
      let previous = number(client, path);
      let moved = 0;
      for (let step = 0; step < 2000; step++) {
        client.changeValues();
        const value = number(client, path);
        assert.ok(value >= profile.min && value <= profile.max, `${path} ${value} in its range`);
        assert.ok(Math.abs(value - profile.typical) <= 15 * profile.step, `${path} ${value} near ${profile.typical}`);
        assert.ok(Math.abs(value - previous) <= 2 * profile.step, `${path}: ${previous} -> ${value} in one step`);
        if (value !== previous) moved++;
        previous = value;
      }
      assert.ok(moved > 1000, `${path} changed in ${moved} of 2000 steps`);
      assert.ok(number(client, `/${id}/0/5601`) <= number(client, `/${id}/0/5602`), 'min and max measured follow');
    }
  });

  it('a humidity sensor beside an irrigation valve is a soil moisture probe: the soil dries, the open valve waters it', function () {
    assert.equal(device([3304]).get('/3304/0/5750'), 'Air humidity');
    assert.equal(device([3304]).get('/3304/0/5701'), '%RH');
    for (const objects of [
      [3304, 3425],
      [3425, 3304],
      ['3304*2', '3425'],
    ]) {
      const client = device(objects);
      assert.equal(client.get('/3304/0/5750'), 'Soil moisture', `objects ${objects.join(',')}`);
      assert.equal(client.get('/3304/0/5701'), '%');
    }
    const field = device([3304, 3425]);
    const start = number(field, '/3304/0/5700');
    for (let step = 0; step < 40; step++) field.changeValues();
    const dried = number(field, '/3304/0/5700');
    assert.ok(dried < start - 5, `the soil dries with the valve closed: ${start} -> ${dried}`);
    field.set('/3425/0/2', 100); // the valve fully open
    for (let step = 0; step < 20; step++) field.changeValues();
    const watered = number(field, '/3304/0/5700');
    assert.ok(watered > dried + 10, `the open valve waters it: ${dried} -> ${watered}`);
    for (let step = 0; step < 500; step++) field.changeValues();
    const saturated = number(field, '/3304/0/5700');
    assert.ok(saturated > 45 && saturated < 60, `and no wetter than the soil takes: ${saturated}`);
  });

  it('lwm2m-sim changes values every 30 s unless told otherwise; --change-every 0 or never keeps them still', function () {
    assert.equal(DEFAULT_CHANGE_EVERY_MS, 30_000);
    assert.equal(parseCommandLine([])!.fleet.changeEveryMs, 30_000);
    assert.equal(parseCommandLine(['--change-every', '5s'])!.fleet.changeEveryMs, 5000);
    assert.equal(parseCommandLine(['--change-every', '0'])!.fleet.changeEveryMs, 0);
    assert.equal(parseCommandLine(['-c', 'never'])!.fleet.changeEveryMs, 0);
    assert.throws(() => parseCommandLine(['--change-every', 'sometimes']), /invalid duration/);
  });
});
