import { strict as assert } from 'node:assert';
import { HalfOpenBudget } from '../../lib/dtls/half-open';

describe('DTLS half-open handshake budget', () => {
  it('names the oldest of a full address first, then the oldest of all when the total is full', () => {
    const budget = new HalfOpenBudget<string>(2, 3);
    assert.equal(budget.victimFor('a'), undefined);
    budget.add('a1', 'a');
    budget.add('b1', 'b');
    budget.add('a2', 'a');
    assert.equal(budget.victimFor('a'), 'a1', 'a is full: its oldest');
    assert.equal(budget.victimFor('c'), 'a1', 'the total is full: the oldest of all');
    budget.release('a1');
    assert.equal(budget.victimFor('a'), undefined);
    assert.equal(budget.victimFor('c'), undefined);
    budget.add('c1', 'c');
    assert.equal(budget.victimFor('c'), 'b1');
    assert.deepEqual([budget.size, budget.countOf('a'), budget.countOf('b'), budget.countOf('c')], [3, 1, 1, 1]);
    assert.equal(budget.release('a1'), false, 'released once');
    for (const entry of ['a2', 'b1', 'c1']) budget.release(entry);
    assert.equal(budget.size, 0);
    assert.equal(budget.countOf('a'), 0);
  });
});
