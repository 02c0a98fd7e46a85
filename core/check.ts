/** Argument checks shared by every layer's options: TypeError for a wrong type, RangeError for a bad value. */

/** An integer in [min, max]; `name` is the option's name as the caller wrote it. */
export function integerInRange(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number, got ${typeof value}`);
  if (!Number.isInteger(value) || value < min || value > max) throw new RangeError(`${name} must be an integer in [${min}, ${max}], got ${value}`);
  return value;
}

/** A boolean option: `fallback` when undefined. */
export function booleanOption(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new TypeError(`${name} must be a boolean, got ${typeof value}`);
  return value;
}

/** A non-empty directory path, without trailing slashes ('/' stays '/'). */
export function directoryPath(value: unknown, name: string): string {
  if (typeof value !== 'string' || value.length === 0) throw new TypeError(`${name} must be a non-empty string`);
  return value.replace(/\/+$/, '') || '/';
}

/** Refuses option names the caller may have misspelt (`segmentSize` for `segmentSizeBytes`). */
export function knownOptionsOnly(options: object, known: readonly string[], what: string): void {
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) throw new TypeError(`${what}: unknown option '${key}' (known: ${known.join(', ')})`);
  }
}

/** Wraps an async release so that only its first call does anything; later calls resolve at once. */
export function once(release: () => Promise<void>): () => Promise<void> {
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    await release();
  };
}
