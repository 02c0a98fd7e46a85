/**
 * Sublevels of an Engine. abstract-level resolves an encoding name through the database's own
 * transcoder, which knows only its built-in names; a sublevel has its own transcoder, so the engine's
 * 'msgpack' name has to be resolved there too: in the sublevel's options, in per-operation options,
 * and in sublevels of sublevels.
 */
import { AbstractSublevel } from 'abstract-level';
import { resolveEncoding } from './msgpack-encoding.js';

type EncodingOptions = { keyEncoding?: unknown; valueEncoding?: unknown };

/**
 * Makes keyEncoding() and valueEncoding() of `proto` (the Engine's, a sublevel's) take 'msgpack' by name.
 * Installed on the prototype rather than declared as overrides: an override had to be typed `never` (its
 * one signature cannot match abstract-level's overloads), so db.valueEncoding().name did not compile;
 * this way the types stay abstract-level's.
 */
export function acceptMsgpackByName(proto: object): void {
  const parent = Object.getPrototypeOf(proto) as Record<string, (this: unknown, encoding?: unknown) => unknown>;
  for (const name of ['keyEncoding', 'valueEncoding'] as const) {
    const base = parent[name] as (this: unknown, encoding?: unknown) => unknown;
    Object.defineProperty(proto, name, {
      value: function (this: unknown, encoding?: unknown): unknown {
        return base.call(this, resolveEncoding(encoding));
      },
      writable: true,
      configurable: true,
      enumerable: false,
    });
  }
}

/** `options` with 'msgpack' replaced by the encoding object in keyEncoding and valueEncoding. */
export function resolveEncodingOptions<T>(options: T): T {
  if (options === null || typeof options !== 'object') return options;
  const resolved: EncodingOptions = { ...(options as EncodingOptions) };
  if (resolved.keyEncoding !== undefined) resolved.keyEncoding = resolveEncoding(resolved.keyEncoding);
  if (resolved.valueEncoding !== undefined) resolved.valueEncoding = resolveEncoding(resolved.valueEncoding);
  return resolved as T;
}

/** The storage format is the engine's EngineKey (not imported: engine.ts imports this module). */
export class EngineSublevel extends AbstractSublevel<unknown, string | Uint8Array, unknown, unknown> {
  constructor(db: unknown, name: string | string[], options?: object) {
    super(db, name as string, resolveEncodingOptions(options) as never);
  }

  /** @internal abstract-level's hook: sublevels of this sublevel accept 'msgpack' too. */
  _sublevel(name: string | string[], options: object): EngineSublevel {
    return new EngineSublevel(this, name, options);
  }
}

acceptMsgpackByName(EngineSublevel.prototype);
