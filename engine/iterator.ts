/**
 * The engine's iterators: each reads one tree (an implicit snapshot taken when it was created, or an
 * explicit snapshot's tree) through a Cursor, and converts keys and values to the requested formats.
 */
import { AbstractIterator, AbstractKeyIterator, AbstractValueIterator } from 'abstract-level';
import { keyIn, keyOut, valueOut, type Format } from './keys.js';
import { Cursor, type Bounds, type Tree } from './ordered-index.js';

/** The range options abstract-level hands _iterator, _keys, _values and _clear (keys already encoded). */
export interface RangeOptions {
  gt?: string | Uint8Array;
  gte?: string | Uint8Array;
  lt?: string | Uint8Array;
  lte?: string | Uint8Array;
  limit: number;
  reverse: boolean;
  keyEncoding: Format;
  valueEncoding: Format;
}

export function boundsOf(o: RangeOptions): Bounds {
  const low = o.gte ?? o.gt;
  const high = o.lte ?? o.lt;
  return {
    low: low === undefined ? undefined : keyIn(low),
    lowInclusive: o.gte !== undefined,
    high: high === undefined ? undefined : keyIn(high),
    highInclusive: o.lte !== undefined,
  };
}

/** State shared by the three iterator kinds. */
class Reader {
  readonly cursor: Cursor;
  readonly keyFormat: Format;
  readonly valueFormat: Format;
  constructor(tree: Tree, options: RangeOptions) {
    this.cursor = new Cursor(tree, boundsOf(options), options.reverse);
    this.keyFormat = options.keyEncoding;
    this.valueFormat = options.valueEncoding;
  }
  seek(target: string | Uint8Array): void {
    this.cursor.seek(keyIn(target));
  }
  /** Up to `size` entries, each as `project` makes it. */
  take<T>(size: number, project: (e: [string, Buffer]) => T): T[] {
    const out: T[] = [];
    while (out.length < size) {
      const e = this.cursor.next();
      if (!e) break;
      out.push(project(e));
    }
    return out;
  }
  entry = (e: [string, Buffer]): [string | Uint8Array, string | Uint8Array] => [keyOut(e[0], this.keyFormat), valueOut(e[1], this.valueFormat)];
  key = (e: [string, Buffer]): string | Uint8Array => keyOut(e[0], this.keyFormat);
  value = (e: [string, Buffer]): string | Uint8Array => valueOut(e[1], this.valueFormat);
}

type AnyDb = ConstructorParameters<typeof AbstractIterator>[0];

export class EngineIterator extends AbstractIterator<AnyDb, string | Uint8Array, string | Uint8Array> {
  readonly #r: Reader;
  constructor(db: AnyDb, tree: Tree, options: RangeOptions) {
    super(db, options as never);
    this.#r = new Reader(tree, options);
  }
  async _next(): Promise<[string | Uint8Array, string | Uint8Array] | undefined> {
    const e = this.#r.cursor.next();
    return e && this.#r.entry(e);
  }
  async _nextv(size: number): Promise<Array<[string | Uint8Array, string | Uint8Array]>> {
    return this.#r.take(size, this.#r.entry);
  }
  async _all(): Promise<Array<[string | Uint8Array, string | Uint8Array]>> {
    return this._nextv(this.limit - this.count);
  }
  _seek(target: string | Uint8Array): void {
    this.#r.seek(target);
  }
}

export class EngineKeyIterator extends AbstractKeyIterator<AnyDb, string | Uint8Array> {
  readonly #r: Reader;
  constructor(db: AnyDb, tree: Tree, options: RangeOptions) {
    super(db, options as never);
    this.#r = new Reader(tree, options);
  }
  async _next(): Promise<string | Uint8Array | undefined> {
    const e = this.#r.cursor.next();
    return e && this.#r.key(e);
  }
  async _nextv(size: number): Promise<Array<string | Uint8Array>> {
    return this.#r.take(size, this.#r.key);
  }
  async _all(): Promise<Array<string | Uint8Array>> {
    return this._nextv(this.limit - this.count);
  }
  _seek(target: string | Uint8Array): void {
    this.#r.seek(target);
  }
}

export class EngineValueIterator extends AbstractValueIterator<AnyDb, string | Uint8Array, string | Uint8Array> {
  readonly #r: Reader;
  constructor(db: AnyDb, tree: Tree, options: RangeOptions) {
    super(db, options as never);
    this.#r = new Reader(tree, options);
  }
  async _next(): Promise<string | Uint8Array | undefined> {
    const e = this.#r.cursor.next();
    return e && this.#r.value(e);
  }
  async _nextv(size: number): Promise<Array<string | Uint8Array>> {
    return this.#r.take(size, this.#r.value);
  }
  async _all(): Promise<Array<string | Uint8Array>> {
    return this._nextv(this.limit - this.count);
  }
  _seek(target: string | Uint8Array): void {
    this.#r.seek(target);
  }
}
