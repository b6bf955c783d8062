import { strict as assert } from 'node:assert';
import { AddressBuckets, budgetKeyOfIpv6 } from '../../lib/coap/address-buckets';

describe('AddressBuckets (per-address token buckets)', function () {
  it('gives a burst, then tokens at the rate, and says how long until the next one', function () {
    const buckets = new AddressBuckets(10);
    for (let i = 0; i < 3; i++) assert.equal(buckets.take('a', 2, 3, 0), 0);
    assert.equal(buckets.take('a', 2, 3, 0), 0.5, 'at 2 a second, the next token comes in 0.5 s');
    assert.equal(buckets.take('b', 2, 3, 0), 0, 'another address has its own bucket');
    assert.equal(buckets.take('a', 2, 3, 500), 0, 'refilled by one after 500 ms');
    assert.ok(buckets.take('a', 2, 3, 500) > 0);
  });

  it('tracks at most maxAddresses (the oldest is forgotten) and forgets buckets that filled up again', function () {
    const buckets = new AddressBuckets(2);
    buckets.take('a', 1, 1, 0);
    buckets.take('b', 1, 1, 0);
    buckets.take('c', 1, 1, 0);
    assert.equal(buckets.size, 2);
    assert.equal(buckets.take('a', 1, 1, 0), 0, "'a' was forgotten: it starts full");
    buckets.forgetFull(1, 1, 500);
    assert.equal(buckets.size, 2, 'half a token in: not full yet');
    buckets.forgetFull(1, 1, 1000);
    assert.equal(buckets.size, 0);
  });

  it('counts an IPv6 sender by its /64 (a host may use any address of it), an IPv4-mapped one as IPv4', function () {
    assert.equal(budgetKeyOfIpv6('2001:db8:1:2::1'), '2001:db8:1:2::/64');
    assert.equal(budgetKeyOfIpv6('2001:0db8:0001:0002:aaaa:bbbb:cccc:dddd'), '2001:db8:1:2::/64');
    assert.equal(budgetKeyOfIpv6('fe80::1%eth0'), 'fe80:0:0:0::/64');
    assert.equal(budgetKeyOfIpv6('::1'), '0:0:0:0::/64');
    assert.equal(budgetKeyOfIpv6('::ffff:192.0.2.1'), '192.0.2.1');
    const buckets = new AddressBuckets(10);
    assert.equal(buckets.take('2001:db8:1:2::1', 1, 1, 0), 0);
    assert.ok(buckets.take('2001:db8:1:2:ffff::9', 1, 1, 0) > 0, 'another address of the same /64 shares the bucket');
    assert.equal(buckets.take('2001:db8:1:3::1', 1, 1, 0), 0, 'another /64 has its own');
    assert.ok(buckets.take('::ffff:192.0.2.1', 1, 1, 0) === 0 && buckets.take('192.0.2.1', 1, 1, 0) > 0);
  });

  it('keeps counting IPv6 senders by their /64 once more senders came than it remembers keys for', function () {
    const buckets = new AddressBuckets(2);
    for (const sender of ['2001:db8:1:1::1', '2001:db8:1:2::1', '2001:db8:1:3::1'])
      assert.equal(buckets.take(sender, 1, 1, 0), 0);
    assert.ok(buckets.take('2001:db8:1:3::2', 1, 1, 0) > 0, 'the same /64 as the last one: its bucket is empty');
    assert.equal(buckets.take('2001:db8:1:1::2', 1, 1, 0), 0, "the first /64's bucket was forgotten: full again");
  });
});
