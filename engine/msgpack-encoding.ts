/** The built-in 'msgpack' encoding: any msgpack value (msgpackr), stored as bytes. */
import { Packr } from 'msgpackr';

const packr = new Packr({ useRecords: false, variableMapSize: true });

export const MSGPACK_ENCODING_NAME = 'msgpack';

/** How msgpackr packs undefined (and a function): fixext 1 of type 0. */
const MSGPACK_UNDEFINED = Buffer.from([0xd4, 0x00, 0x00]);

function invalidValue(message: string, cause?: unknown): TypeError {
  return Object.assign(new TypeError(message, cause === undefined ? undefined : { cause }), { code: 'LEVEL_INVALID_VALUE' });
}

/** A level-transcoder encoding object (format 'buffer'). */
export const msgpackEncoding = {
  name: MSGPACK_ENCODING_NAME,
  format: 'buffer' as const,
  /**
   * A value msgpack cannot carry is refused with a TypeError (code LEVEL_INVALID_VALUE, abstract-level's
   * code for a value it refuses; msgpackr's error as its cause), before anything is written: a symbol, a
   * cyclic object, an integer past 64 bits; and a value that would come back as undefined (a function),
   * which a get could not tell from a missing key. Nested inside an object, a function becomes undefined
   * as msgpack has it; a Map comes back as an object, a Set as an array (README, "The engine").
   */
  encode(data: unknown): Buffer {
    let packed: Buffer;
    try {
      packed = packr.pack(data);
    } catch (err) {
      throw invalidValue(`the 'msgpack' encoding cannot encode this value: ${(err as Error)?.message ?? String(err)}`, err);
    }
    if (packed.length === MSGPACK_UNDEFINED.length && packed.equals(MSGPACK_UNDEFINED) && data !== undefined) {
      throw invalidValue(`the 'msgpack' encoding cannot encode a ${typeof data}: it would read back as undefined`);
    }
    return packed;
  },
  decode(data: Buffer): unknown {
    return packr.unpack(data);
  },
};

/** Replaces the name 'msgpack' by the encoding object; anything else passes through. */
export function resolveEncoding<T>(encoding: T): T | typeof msgpackEncoding {
  return encoding === MSGPACK_ENCODING_NAME ? msgpackEncoding : encoding;
}
