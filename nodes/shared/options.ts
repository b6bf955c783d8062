/** Options a node's config sets and a msg may fill. */

/** '' / 'auto' = negotiate; a number = that content format (node config wins, then msg.format). */
export function formatOption(configured: string | undefined, fromMsg: unknown): number | undefined {
  for (const candidate of [configured, fromMsg]) {
    if (candidate === undefined || candidate === null || candidate === '' || candidate === 'auto') continue;
    const format = Number(candidate);
    if (Number.isInteger(format) && format >= 0) return format;
  }
  return undefined;
}

export function timeoutOption(configured: string | number | undefined): number | undefined {
  const seconds = Number(configured);
  return configured === undefined || configured === '' || !Number.isFinite(seconds) || seconds <= 0
    ? undefined
    : seconds * 1000;
}
