/**
 * Seeds for randomized tests. FLUSHPOINT_SEED=<n> runs that one seed (to replay a failure);
 * FLUSHPOINT_SEEDS=<count> runs more (or fewer) than the default.
 */

export function seedList(defaultCount: number, firstSeed = 1): number[] {
  const one = process.env.FLUSHPOINT_SEED;
  if (one !== undefined && one !== '') {
    const seed = Number(one);
    if (!Number.isSafeInteger(seed)) throw new RangeError(`FLUSHPOINT_SEED must be an integer, got ${one}`);
    return [seed];
  }
  const countText = process.env.FLUSHPOINT_SEEDS;
  const count = countText ? Number(countText) : defaultCount;
  if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`FLUSHPOINT_SEEDS must be a positive integer, got ${countText}`);
  return Array.from({ length: count }, (_, i) => firstSeed + i);
}

/** True when a single seed is being replayed (tallies over many seeds do not apply). */
export function replaying(): boolean {
  return (process.env.FLUSHPOINT_SEED ?? '') !== '';
}

/** The line a failure prints so that it replays. */
export function replayHint(seed: number, testFile: string, testName: string): string {
  return `replay: FLUSHPOINT_SEED=${seed} npx vitest run ${testFile} -t ${JSON.stringify(testName)}`;
}
