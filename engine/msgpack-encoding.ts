/** The built-in 'msgpack' encoding: any msgpack value (msgpackr), stored as bytes. */
import { Packr } from 'msgpackr';

const packr = new Packr({ useRecords: false, variableMapSize: true });

export const MSGPACK_ENCODING_NAME = 'msgpack';

/** A level-transcoder encoding object (format 'buffer'). */
export const msgpackEncoding = {
  name: MSGPACK_ENCODING_NAME,
  format: 'buffer' as const,
  encode(data: unknown): Buffer {
    return packr.pack(data);
  },
  decode(data: Buffer): unknown {
    return packr.unpack(data);
  },
};

/** Replaces the name 'msgpack' by the encoding object; anything else passes through. */
export function resolveEncoding<T>(encoding: T): T | typeof msgpackEncoding {
  return encoding === MSGPACK_ENCODING_NAME ? msgpackEncoding : encoding;
}
