/** Random payloads for WAL tests: empty, small, medium and near the segment's payload limit. */
import type { Random } from '../../core/random.js';
import { patternBytes } from '../fixtures/payload.mjs';

export { patternBytes, payloadForLsn, PAYLOAD_FOR_LSN_BYTES_MAX } from '../fixtures/payload.mjs';

export type PayloadKind = 'empty' | 'small' | 'medium' | 'nearMax';

/**
 * 'mixed': 10% empty, 10% within 64 bytes of `payloadBytesMax`, 15% any size up to it, the rest small
 * (1 to 200 bytes). 'small': 10% empty, the rest small (many records per segment and per sector).
 */
export type PayloadProfile = 'mixed' | 'small';

export function randomPayload(rng: Random, payloadBytesMax: number, profile: PayloadProfile = 'mixed'): { payload: Uint8Array; kind: PayloadKind } {
  const pick = rng.next();
  // 'small' maps its pick onto the empty and small bands only.
  const r = profile === 'mixed' ? pick : pick < 0.1 ? pick : 0.35 + pick * 0.65;
  let kind: PayloadKind;
  let lengthBytes: number;
  if (r < 0.1) {
    kind = 'empty';
    lengthBytes = 0;
  } else if (r < 0.2) {
    kind = 'nearMax';
    lengthBytes = payloadBytesMax - rng.int(Math.min(64, payloadBytesMax + 1));
  } else if (r < 0.35) {
    kind = 'medium';
    lengthBytes = rng.int(payloadBytesMax + 1);
  } else {
    kind = 'small';
    lengthBytes = 1 + rng.int(200);
  }
  return { payload: patternBytes(rng.int(0x1_0000_0000), lengthBytes), kind };
}
