/**
 * How a config node tells its user what its host's stores could not read back or write. The stores keep their
 * problems (a journal reports its torn lines and the entries sealed with another secret while it is read, before
 * the config node exists): the node logs those once, in one warning with the counts, logs later ones as they come,
 * and shows the counts in its status (see StoreProblemLog.statusText). Redis going away and coming back is told
 * through `storeEvents` (followStoreLink).
 */
import type { StoreProblem, StoreProblemLog } from '../../lib/store/problems';
import type { Node } from './node-red';
import { storeEvents } from './persistence';
import { t } from './i18n';

/**
 * Logs on `node` what `problems` held before anyone heard it, then each new problem; `counted` is called when the
 * counts for the status change. Returns what stops listening (the node's close).
 */
export function reportStoreProblems(
  node: Pick<Node, 'warn'>,
  problems: StoreProblemLog | undefined,
  counted: () => void,
): () => void {
  if (!problems) return () => undefined;
  const earlier = problems.takeUnheard();
  if (earlier.length > 0)
    node.warn(t('warnings.store', { problem: earlier.map((problem) => problem.message).join('; ') }));
  const onProblem = (problem: StoreProblem) => {
    node.warn(t('warnings.store', { problem: problem.message }));
    if (problem.kind !== 'other') counted();
  };
  problems.on('problem', onProblem);
  return () => problems.off('problem', onProblem);
}

/**
 * Follows the Redis link of the stores under host key `key` (storeEvents): `down` once when it goes away, `up` once
 * when it is back. Returns whether it is down now, and what stops following (the node's close).
 */
export function followStoreLink(
  key: string,
  on: { down: (err: Error) => void; up: () => void },
): { readonly down: boolean; stop: () => void } {
  let down = false;
  const onDown = (from: string, err: Error) => {
    if (from !== key || down) return;
    down = true;
    on.down(err);
  };
  const onUp = (from: string) => {
    if (from !== key || !down) return;
    down = false;
    on.up();
  };
  storeEvents.on('down', onDown);
  storeEvents.on('up', onUp);
  return {
    get down() {
      return down;
    },
    stop: () => {
      storeEvents.off('down', onDown);
      storeEvents.off('up', onUp);
    },
  };
}
