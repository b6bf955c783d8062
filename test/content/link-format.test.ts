import { strict as assert } from 'node:assert';
import {
  checkLinkAttributes,
  decodeDiscover,
  isLwm2mRootLink,
  parseContentFormats,
  parseLinkFormat,
  serializeLinkFormat,
  type Link,
} from '../../lib/content/link-format';
import { assertCodecError } from './fixtures';

describe('content/link-format', () => {
  describe('parseLinkFormat', () => {
    it('parses a registration payload with a root link and content formats', () => {
      const links = parseLinkFormat('</>;rt="oma.lwm2m";ct=11543,</1/0>,</3/0>,</3303>;ver=1.1,</3303/0>');
      assert.deepEqual(links, [
        { uri: '/', params: { rt: 'oma.lwm2m', ct: '11543' } },
        { uri: '/1/0', params: {} },
        { uri: '/3/0', params: {} },
        { uri: '/3303', params: { ver: '1.1' } },
        { uri: '/3303/0', params: {} },
      ]);
      assert.ok(isLwm2mRootLink(links[0]));
      assert.ok(!isLwm2mRootLink(links[1]));
    });

    it('handles quoted values containing commas, semicolons, escapes and "<"', () => {
      const links = parseLinkFormat('</a>;title="x, y; z";ct="60 110";anchor="</b>",</c>;t="say \\"hi\\"\\\\"');
      assert.deepEqual(links, [
        { uri: '/a', params: { title: 'x, y; z', ct: '60 110', anchor: '</b>' } },
        { uri: '/c', params: { t: 'say "hi"\\' } },
      ]);
    });

    it('parses ct lists and single values', () => {
      assert.deepEqual(parseContentFormats('60 110 112 11542 11543'), [60, 110, 112, 11542, 11543]);
      assert.deepEqual(parseContentFormats('110'), [110]);
      assert.deepEqual(parseContentFormats(undefined), []);
      assertCodecError(() => parseContentFormats('60 abc'), /invalid content format "abc"/);
      assertCodecError(() => parseContentFormats('70000'), /invalid content format/);
      assertCodecError(() => parseContentFormats(true), /without a value/);
    });

    it('tolerates whitespace and newlines between links and around separators, and a trailing comma', () => {
      const text = ' </1/0> ;\n ver=1.1 ,\n\t</3/0>;obs ,\r\n</5>,\n';
      assert.deepEqual(parseLinkFormat(text), [
        { uri: '/1/0', params: { ver: '1.1' } },
        { uri: '/3/0', params: { obs: true } },
        { uri: '/5', params: {} },
      ]);
    });

    it('gives [] for an empty payload, keeps the first of repeated parameters, valueless parameters are true', () => {
      assert.deepEqual(parseLinkFormat(''), []);
      assert.deepEqual(parseLinkFormat(' \n '), []);
      assert.deepEqual(parseLinkFormat('</a>;x=1;x=2;obs'), [{ uri: '/a', params: { x: '1', obs: true } }]);
    });

    it('does not let a "__proto__" parameter touch the prototype', () => {
      const [link] = parseLinkFormat('</a>;__proto__="x";b=1');
      assert.equal(Object.getPrototypeOf(link.params), Object.prototype);
      assert.equal(link.params['__proto__'], 'x');
      assert.deepEqual(Object.keys(link.params), ['__proto__', 'b']);
    });

    const garbage: [string, RegExp][] = [
      ['hello', /expected "<" at offset 0/],
      ['</a', /unterminated "<"/],
      ['</a>;', /expected a parameter name at offset 5/],
      ['</a>;=1', /expected a parameter name/],
      ['</a>;x=', /expected a value for parameter "x"/],
      ['</a>;x="abc', /unterminated quoted string/],
      ['</a>;x="abc\\', /unterminated quoted string/],
      ['</a> </b>', /expected "," or ";" at offset 5/],
      ['</a>,,</b>', /expected "<" at offset 5/],
      ['</a b>', /invalid character in URI at offset 3/],
      ['</a>;x=1 2', /expected "," or ";"/],
      ['</a>;x="1"2', /expected "," or ";"/],
    ];
    for (const [text, pattern] of garbage) {
      it(`rejects ${JSON.stringify(text)} with 4.00`, () => {
        assertCodecError(() => parseLinkFormat(text), pattern, '4.00');
      });
    }
  });

  describe('serializeLinkFormat', () => {
    it('quotes rt and values that need it, leaves tokens bare', () => {
      const links: Link[] = [
        { uri: '/', params: { rt: 'oma.lwm2m', ct: '11543' } },
        { uri: '/3/0/7', params: { dim: '8', obs: true, ct: '60 110', title: 'a "b", c' } },
      ];
      const text = serializeLinkFormat(links);
      assert.equal(text, '</>;rt="oma.lwm2m";ct=11543,</3/0/7>;dim=8;obs;ct="60 110";title="a \\"b\\", c"');
      assert.deepEqual(parseLinkFormat(text), links);
      assert.equal(serializeLinkFormat([]), '');
    });

    it('refuses URIs and names that cannot be written', () => {
      assertCodecError(() => serializeLinkFormat([{ uri: '/a>b', params: {} }]), /invalid character in URI/);
      assertCodecError(() => serializeLinkFormat([{ uri: '/a', params: { 'x y': '1' } }]), /invalid parameter name/);
    });
  });

  describe('decodeDiscover', () => {
    it('turns a Discover response into paths with typed attributes', () => {
      const text =
        '</3>;ver=1.1,</3/0>;pmin=10;pmax=60,</3/0/1>,</3/0/2>,</3/0/6>;dim=2,' +
        '</3/0/7>;dim=2;gt=50;lt=42.2;st=0.5,</3/0/13>;epmin=1;epmax=3600;edge=1;con=0;hqmax=5;custom="x"';
      const entries = decodeDiscover(text);
      assert.deepEqual(
        entries.map((e) => e.path.toString()),
        ['/3', '/3/0', '/3/0/1', '/3/0/2', '/3/0/6', '/3/0/7', '/3/0/13'],
      );
      assert.deepEqual(entries[0].attributes, { ver: '1.1' });
      assert.deepEqual(entries[1].attributes, { pmin: 10, pmax: 60 });
      assert.deepEqual(entries[2].attributes, {});
      assert.deepEqual(entries[5].attributes, { dim: 2, gt: 50, lt: 42.2, st: 0.5 });
      assert.deepEqual(entries[6].attributes, {
        epmin: 1,
        epmax: 3600,
        edge: 1,
        con: 0,
        hqmax: 5,
        other: { custom: 'x' },
      });
      assert.equal(entries[6].path.resourceId, 13);
    });

    it('strips an alternate root path announced by rt="oma.lwm2m"', () => {
      const entries = decodeDiscover('</lwm2m>;rt="oma.lwm2m";ct="60 110",</lwm2m/1/0>,</lwm2m/3/0>;ver=1.0');
      assert.deepEqual(
        entries.map((e) => [e.path.toString(), e.uri]),
        [
          ['/1/0', '/lwm2m/1/0'],
          ['/3/0', '/lwm2m/3/0'],
        ],
      );
      assert.deepEqual(
        decodeDiscover('</x/3/0>', '/x/').map((e) => e.path.toString()),
        ['/3/0'],
      );
    });

    it('rejects links that are not LwM2M paths and attributes that are not numbers', () => {
      assertCodecError(() => decodeDiscover('</rd/abc>'), /not an LwM2M path/);
      assertCodecError(() => decodeDiscover('</lwm2m>;rt="oma.lwm2m",</other/3/0>'), /outside the root path/);
      assertCodecError(() => decodeDiscover('</3/0>;pmin=abc'), /pmin=abc is not a non-negative integer/);
      assertCodecError(() => decodeDiscover('</3/0>;pmin=-1'), /not a non-negative integer/);
      assertCodecError(() => decodeDiscover('</3/0>;pmin'), /pmin=true/);
      assertCodecError(() => decodeDiscover('</3/0/7>;gt=1e'), /gt=1e is not a number/);
      assertCodecError(() => decodeDiscover('</3>;ver=one'), /not a version/);
    });

    it('dim is 0 to 255 and ssid 1 to 65534; ssid=0 only on a Security instance (a bootstrap account)', () => {
      assert.deepEqual(
        decodeDiscover('</3/0/6>;dim=0,</3/0/7>;dim=255,</1/0>;ssid=1,</1/1>;ssid="65534",</0/1>;ssid=0').map(
          (e) => e.attributes,
        ),
        [{ dim: 0 }, { dim: 255 }, { ssid: 1 }, { ssid: 65534 }, { ssid: 0 }],
      );
      const bad: [string, RegExp][] = [
        ['</3/0/7>;dim=256', /<\/3\/0\/7> attribute dim=256 is not an integer from 0 to 255/],
        ['</3/0/7>;dim=-1', /dim=-1 is not an integer from 0 to 255/],
        ['</3/0/7>;dim=2.5', /dim=2.5 is not an integer/],
        ['</3/0/7>;dim', /dim=true is not an integer/],
        ['</1/0>;ssid=0', /<\/1\/0> attribute ssid=0 is not an integer from 1 to 65534/],
        ['</1/0>;ssid=65535', /ssid=65535 is not an integer from 1 to 65534/],
        ['</0/0>;ssid=65535', /ssid=65535 is not an integer from 1 to 65534/],
        ['</1/0>;ssid=99999999999', /ssid=99999999999 is not an integer/],
        ['</lwm2m>;rt="oma.lwm2m",</lwm2m/1/0>;ssid=0', /<\/lwm2m\/1\/0> attribute ssid=0/],
      ];
      for (const [text, pattern] of bad) {
        assertCodecError(() => decodeDiscover(text), pattern);
        const links = parseLinkFormat(text);
        assertCodecError(() => links.forEach((link) => checkLinkAttributes(link)), pattern);
      }
      // checkLinkAttributes reads the object from the URI, or takes it as given (a root path before it)
      assert.doesNotThrow(() => checkLinkAttributes({ uri: '/0/1', params: { ssid: '0' } }));
      assert.doesNotThrow(() => checkLinkAttributes({ uri: '/lwm2m/0/1', params: { ssid: '0' } }, 0));
      assertCodecError(() => checkLinkAttributes({ uri: '/lwm2m/0/1', params: { ssid: '0' } }), /ssid=0/);
    });
  });
});
