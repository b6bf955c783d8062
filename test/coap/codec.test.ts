import { strict as assert } from 'node:assert';
import { generate, parse } from 'coap-packet';
import {
  blockValue,
  codeFromByte,
  codeToByte,
  coapCodeClass,
  decodeBlock,
  decodeUint,
  encodeMessage,
  encodeUint,
  emptyMessage,
  getContentFormat,
  getLocationPath,
  getUriPath,
  getUriQuery,
  isCriticalOption,
  optionNumber,
  sizeToSzx,
  TimerHeap,
  type TimerItem,
} from '../../lib/coap';
import { sleep } from './helpers';

describe('coap codec', () => {
  it('encodes uint options with minimal length', () => {
    assert.equal(encodeUint(0).length, 0);
    assert.deepEqual([...encodeUint(1)], [1]);
    assert.deepEqual([...encodeUint(255)], [255]);
    assert.deepEqual([...encodeUint(256)], [1, 0]);
    assert.deepEqual([...encodeUint(65536)], [1, 0, 0]);
    assert.deepEqual([...encodeUint(0xffffffff)], [255, 255, 255, 255]);
    for (const v of [0, 1, 300, 70000, 2 ** 24 + 5, 2 ** 32 - 1]) assert.equal(decodeUint(encodeUint(v)), v);
  });

  it('converts codes', () => {
    assert.equal(codeFromByte(0x45), '2.05');
    assert.equal(codeToByte('2.05'), 0x45);
    assert.equal(codeToByte('4.13'), (4 << 5) | 13);
    assert.equal(codeToByte('GET'), 1);
    assert.equal(codeToByte('205'), 0x45);
    assert.throws(() => codeToByte('9.99'));
    assert.equal(coapCodeClass('2.31'), 2);
    assert.equal(coapCodeClass('5.03'), 5);
    assert.equal(coapCodeClass('0.01'), 0);
  });

  it('knows option numbers and criticality', () => {
    assert.equal(optionNumber('Uri-Path'), 11);
    assert.equal(optionNumber(2049), 2049);
    assert.equal(optionNumber('65001'), 65001);
    assert.throws(() => optionNumber('Nope'));
    assert.equal(isCriticalOption(11), true);
    assert.equal(isCriticalOption(12), false);
  });

  it('encodes messages that coap-packet parses identically', () => {
    const token = Buffer.from('0102030405060708', 'hex');
    const big = Buffer.alloc(300, 0x61);
    const buf = encodeMessage(
      0,
      0x02,
      0xbeef,
      token,
      [
        { n: 15, v: 'ep=dev1' },
        { n: 11, v: 'rd' },
        { n: 12, v: 40 },
        { n: 15, v: 'lt=300' },
        { n: 11, v: 'pfad-ä' },
        { n: 60, v: 100000 },
        { n: 2049, v: big },
        { n: 6, v: 0 },
      ],
      Buffer.from('</1/0>'),
    );
    const p = parse(buf);
    assert.equal(p.code, '0.02');
    assert.equal(p.confirmable, true);
    assert.equal(p.messageId, 0xbeef);
    assert.deepEqual(p.token, token);
    assert.deepEqual(getUriPath(p.options), ['rd', 'pfad-ä']);
    assert.deepEqual(getUriQuery(p.options), ['ep=dev1', 'lt=300']);
    assert.equal(getContentFormat(p.options), 40);
    assert.equal(p.payload.toString(), '</1/0>');
    const o2049 = p.options.find((o) => o.name === 'OCF-Accept-Content-Format-Version');
    assert.deepEqual(o2049?.value, big);
    const obs = p.options.find((o) => o.name === 'Observe');
    assert.equal(obs?.value.length, 0);
    // same bytes as coap-packet's own encoder
    const ref = generate(
      {
        code: '0.02',
        confirmable: true,
        messageId: 0xbeef,
        token,
        options: p.options.map((o) => ({ name: o.name, value: o.value })),
        payload: Buffer.from('</1/0>'),
      },
      2000,
    );
    assert.deepEqual(buf, ref);
  });

  it('encodes location paths and empty messages', () => {
    const buf = encodeMessage(
      2,
      0x41,
      7,
      Buffer.from([1]),
      [
        { n: 8, v: 'rd' },
        { n: 8, v: '5a3f' },
      ],
      undefined,
    );
    const p = parse(buf);
    assert.equal(p.ack, true);
    assert.equal(p.code, '2.01');
    assert.deepEqual(getLocationPath(p.options), ['rd', '5a3f']);
    const e = parse(emptyMessage(3, 42));
    assert.equal(e.reset, true);
    assert.equal(e.messageId, 42);
    assert.equal(e.code, '0.00');
  });

  it('encodes and decodes block options', () => {
    assert.deepEqual(decodeBlock(encodeUint(blockValue(0, true, 6))), { num: 0, more: true, szx: 6, size: 1024 });
    assert.deepEqual(decodeBlock(encodeUint(blockValue(1000, false, 2))), { num: 1000, more: false, szx: 2, size: 64 });
    assert.equal(decodeBlock(Buffer.from([0x07])), undefined); // BERT
    assert.equal(sizeToSzx(1024), 6);
    assert.equal(sizeToSzx(1000), 5);
    assert.equal(sizeToSzx(16), 0);
    assert.equal(sizeToSzx(5), 0);
  });
});

describe('TimerHeap', () => {
  it('fires items in deadline order, supports cancel and reschedule, and clears', async () => {
    const heap = new TimerHeap(0);
    const fired: string[] = [];
    const mk = (name: string): TimerItem => ({ timerAt: 0, timerIdx: -1, onTimer: () => fired.push(name) });
    const a = mk('a');
    const b = mk('b');
    const c = mk('c');
    const d = mk('d');
    const now = performance.now();
    heap.schedule(a, now + 30);
    heap.schedule(b, now + 10);
    heap.schedule(c, now + 20);
    heap.schedule(d, now + 5);
    heap.cancel(d);
    heap.schedule(a, now + 15); // earlier now
    await sleep(60);
    assert.deepEqual(fired, ['b', 'a', 'c']);
    heap.schedule(a, performance.now() + 1000);
    assert.equal(heap.size, 1);
    heap.clear();
    assert.equal(heap.size, 0);
    assert.equal(a.timerIdx, -1);
  });
});
