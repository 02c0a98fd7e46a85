/*
 * recordCrcWalk(uint8Array, start, end, recordBytesMax) -> number: checks the CRC-32 of the framed records
 * (record/format.ts) that follow one another in [start, end) from `start`, walking them by their payload
 * length, and returns the offset where the walk stopped: the end of the last record whose CRC matched. It
 * stops at a header that does not fit, an impossible length, a record that runs past `end`, a record
 * larger than `recordBytesMax` (the caller checks those; see recordCrcMethod), or a CRC that does
 * not match (an all-zero header never matches). Everything else about a record (LSN, salt, the end of data) is
 * decided by the caller, in JavaScript; this only takes the one CRC per record off the event loop's
 * JavaScript during recovery, where it was half the time (docs/decisions.md, "Recovery's CRCs").
 *
 * recordCrcFill(uint8Array, start, end, recordBytesMax) -> number: the other direction, for the WAL's appends
 * (wal/staging.ts): walks the records framed in [start, end) the same way and stores each one's CRC-32
 * (little-endian, at its start), leaving records larger than `recordBytesMax` as they are (the caller
 * computed theirs). Returns where the walk stopped: `end` when the records
 * tile the range. One call per run of staged records instead of one JavaScript CRC per record, which was
 * the largest part of the event loop's work per record (docs/decisions.md, "Appends' CRCs in the addon").
 *
 * recordCrcMethod() -> 'clmul' | 'table': how this process computes them. CRC-32 as zlib computes it
 * (reflected polynomial 0xEDB88320): by carry-less multiplication where the CPU has PCLMULQDQ (x86-64;
 * ~14 GB/s here, faster than zlib.crc32 at every record size, so callers send every record), else slicing
 * by 16 (~3.5 GB/s; zlib.crc32 overtakes it around 2-4 KiB, so callers send only records up to 2 KiB:
 * wal/crc-walk.ts crcAddonRecordBytesMax). Reads bytes with no alignment or byte-order assumption.
 * Synchronous: a call covers one scan window (4 MiB) or one run of staged records.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <node_api.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_CLMUL_PATH 1
/* Set once (with the table) when the CPU has PCLMULQDQ, unless FLUSHPOINT_CRC_TABLE_ONLY is set (a diagnostic). */
static int clmul_available;
#endif

#define RECORD_HEADER_BYTES 24
#define RECORD_PAYLOAD_BYTES_OFFSET 4
#define PAYLOAD_BYTES_MAX_FORMAT 0xfffffff0u

static uint32_t table[16][256];
/* Worker threads may load the addon and recover at once: the table is made once, by whichever comes first. */
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void make_table(void) {
#ifdef HAVE_CLMUL_PATH
  __builtin_cpu_init();
  clmul_available = __builtin_cpu_supports("pclmul") && getenv("FLUSHPOINT_CRC_TABLE_ONLY") == NULL;
#endif
  for (uint32_t n = 0; n < 256; n++) {
    uint32_t c = n;
    for (int k = 0; k < 8; k++) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
    table[0][n] = c;
  }
  for (uint32_t n = 0; n < 256; n++) {
    uint32_t c = table[0][n];
    for (int t = 1; t < 16; t++) {
      c = (c >> 8) ^ table[0][c & 255];
      table[t][n] = c;
    }
  }
}

static inline uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* The table walk over n bytes from register c (not inverted on entry or exit). */
static uint32_t crc32_table_update(uint32_t c, const uint8_t *p, size_t n) {
  while (n >= 16) {
    uint32_t a = le32(p) ^ c;
    uint32_t b = le32(p + 4);
    uint32_t d = le32(p + 8);
    uint32_t e = le32(p + 12);
    c = table[15][a & 255] ^ table[14][(a >> 8) & 255] ^ table[13][(a >> 16) & 255] ^ table[12][a >> 24] ^
        table[11][b & 255] ^ table[10][(b >> 8) & 255] ^ table[9][(b >> 16) & 255] ^ table[8][b >> 24] ^
        table[7][d & 255] ^ table[6][(d >> 8) & 255] ^ table[5][(d >> 16) & 255] ^ table[4][d >> 24] ^
        table[3][e & 255] ^ table[2][(e >> 8) & 255] ^ table[1][(e >> 16) & 255] ^ table[0][e >> 24];
    p += 16;
    n -= 16;
  }
  while (n-- > 0) c = table[0][(c ^ *p++) & 255] ^ (c >> 8);
  return c;
}

#ifdef HAVE_CLMUL_PATH
/*
 * Carry-less multiplication (PCLMULQDQ), where the CPU has it: the message is folded 64 bytes at a time
 * into four 128-bit lanes, the lanes into one, and that one's 16 bytes go through the table from a zero
 * register, which gives the register of the whole message (folding keeps the message's value modulo the
 * polynomial). Folding a lane forward by D bits multiplies its low half by x^(D+32) and its high half by
 * x^(D-32), both reduced modulo the polynomial, bit-reflected and shifted left by one (the reflected
 * product comes out one bit short); test/record-crc-method.test.ts derives them and checks these.
 * 1.7x the table's speed on a 148-byte record here, 4x on 4 KiB (docs/decisions.md, "CRC-32 by
 * carry-less multiplication").
 */
__attribute__((target("pclmul,sse2"))) static inline __m128i clmul_fold(__m128i lane, __m128i k, __m128i next) {
  return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(lane, k, 0x00), _mm_clmulepi64_si128(lane, k, 0x11)), next);
}

/* n >= 64. Processes the whole 16-byte blocks of [p, p + n) from register c; *done gets how many bytes. */
__attribute__((target("pclmul,sse2"))) static uint32_t crc32_clmul_update(uint32_t c, const uint8_t *p, size_t n, size_t *done) {
  const __m128i by64 = _mm_set_epi64x(0x1c6e41596LL, 0x154442bd4LL);  /* high: x^(512-32), low: x^(512+32) */
  const __m128i by16 = _mm_set_epi64x(0x0ccaa009eLL, 0x1751997d0LL);  /* high: x^(128-32), low: x^(128+32) */
  const uint8_t *start = p;
  __m128i x1 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)p), _mm_cvtsi32_si128((int)c));
  __m128i x2 = _mm_loadu_si128((const __m128i *)(p + 16));
  __m128i x3 = _mm_loadu_si128((const __m128i *)(p + 32));
  __m128i x4 = _mm_loadu_si128((const __m128i *)(p + 48));
  p += 64;
  n -= 64;
  while (n >= 64) {
    x1 = clmul_fold(x1, by64, _mm_loadu_si128((const __m128i *)p));
    x2 = clmul_fold(x2, by64, _mm_loadu_si128((const __m128i *)(p + 16)));
    x3 = clmul_fold(x3, by64, _mm_loadu_si128((const __m128i *)(p + 32)));
    x4 = clmul_fold(x4, by64, _mm_loadu_si128((const __m128i *)(p + 48)));
    p += 64;
    n -= 64;
  }
  x1 = clmul_fold(x1, by16, x2);
  x1 = clmul_fold(x1, by16, x3);
  x1 = clmul_fold(x1, by16, x4);
  while (n >= 16) {
    x1 = clmul_fold(x1, by16, _mm_loadu_si128((const __m128i *)p));
    p += 16;
    n -= 16;
  }
  uint8_t folded[16];
  _mm_storeu_si128((__m128i *)folded, x1);
  *done = (size_t)(p - start);
  return crc32_table_update(0, folded, 16);
}
#endif

static uint32_t crc32_bytes(const uint8_t *p, size_t n) {
  uint32_t c = 0xffffffffu;
#ifdef HAVE_CLMUL_PATH
  if (clmul_available && n >= 64) {
    size_t done = 0;
    c = crc32_clmul_update(c, p, n, &done);
    p += done;
    n -= done;
  }
#endif
  return crc32_table_update(c, p, n) ^ 0xffffffffu;
}

static napi_value throw_type(napi_env env, const char *message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
}

/* The arguments both calls take, checked: (uint8Array, start, end, recordBytesMax). NULL after a thrown TypeError. */
static const uint8_t *record_run_args(napi_env env, napi_callback_info info, const char *name, size_t *start, size_t *end, double *max) {
  size_t argc = 4;
  napi_value argv[4];
  char message[128];
  snprintf(message, sizeof message, "%s(uint8Array, start, end, recordBytesMax)", name);
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4) return throw_type(env, message), NULL;
  bool is_typed = false;
  napi_is_typedarray(env, argv[0], &is_typed);
  napi_typedarray_type type;
  size_t length = 0;
  void *data = NULL;
  if (!is_typed || napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL) != napi_ok || type != napi_uint8_array) {
    snprintf(message, sizeof message, "%s: the first argument must be a Uint8Array", name);
    return throw_type(env, message), NULL;
  }
  double start_d = -1, end_d = -1, max_d = -1;
  napi_get_value_double(env, argv[1], &start_d);
  napi_get_value_double(env, argv[2], &end_d);
  napi_get_value_double(env, argv[3], &max_d);
  if (!(max_d >= 0)) {
    snprintf(message, sizeof message, "%s: recordBytesMax must be a number >= 0", name);
    return throw_type(env, message), NULL;
  }
  if (!(start_d >= 0 && end_d >= start_d && end_d <= (double)length) || start_d != (double)(size_t)start_d || end_d != (double)(size_t)end_d) {
    snprintf(message, sizeof message, "%s: need 0 <= start <= end <= length, whole numbers", name);
    return throw_type(env, message), NULL;
  }
  pthread_once(&table_once, make_table);
  *start = (size_t)start_d;
  *end = (size_t)end_d;
  *max = max_d;
  /* A zero-length array may have no data pointer: nothing is read then (start == end == 0). */
  static const uint8_t empty[1];
  return data != NULL ? (const uint8_t *)data : empty;
}

/*
 * The size of the record framed at p[off], or 0 where the walk stops: a header that does not fit in
 * [off, end), an impossible length, or a record running past `end`.
 */
static inline uint64_t record_size_at(const uint8_t *p, size_t off, size_t end) {
  if (end - off < RECORD_HEADER_BYTES) return 0;
  uint32_t payload = le32(p + off + RECORD_PAYLOAD_BYTES_OFFSET);
  if (payload > PAYLOAD_BYTES_MAX_FORMAT) return 0;
  uint64_t size = ((uint64_t)RECORD_HEADER_BYTES + payload + 7) & ~(uint64_t)7;
  return size > end - off ? 0 : size;
}

napi_value record_crc_walk(napi_env env, napi_callback_info info) {
  size_t off, end;
  double max_d;
  const uint8_t *p = record_run_args(env, info, "recordCrcWalk", &off, &end, &max_d);
  if (p == NULL) return NULL;
  for (;;) {
    uint64_t size = record_size_at(p, off, end);
    if (size == 0 || (double)size > max_d) break;
    if (crc32_bytes(p + off + RECORD_PAYLOAD_BYTES_OFFSET, (size_t)size - RECORD_PAYLOAD_BYTES_OFFSET) != le32(p + off)) break;
    off += (size_t)size;
  }
  napi_value result;
  napi_create_double(env, (double)off, &result);
  return result;
}

napi_value record_crc_fill(napi_env env, napi_callback_info info) {
  size_t off, end;
  double max_d;
  uint8_t *p = (uint8_t *)record_run_args(env, info, "recordCrcFill", &off, &end, &max_d);
  if (p == NULL) return NULL;
  for (;;) {
    uint64_t size = record_size_at(p, off, end);
    if (size == 0) break;
    if ((double)size <= max_d) {
      uint32_t c = crc32_bytes(p + off + RECORD_PAYLOAD_BYTES_OFFSET, (size_t)size - RECORD_PAYLOAD_BYTES_OFFSET);
      p[off] = (uint8_t)c;
      p[off + 1] = (uint8_t)(c >> 8);
      p[off + 2] = (uint8_t)(c >> 16);
      p[off + 3] = (uint8_t)(c >> 24);
    }
    off += (size_t)size;
  }
  napi_value result;
  napi_create_double(env, (double)off, &result);
  return result;
}

/* recordCrcMethod() -> 'clmul' | 'table': how the calls above compute a CRC-32 in this process. */
napi_value record_crc_method(napi_env env, napi_callback_info info) {
  (void)info;
  pthread_once(&table_once, make_table);
  int clmul = 0;
#ifdef HAVE_CLMUL_PATH
  clmul = clmul_available;
#endif
  napi_value result;
  napi_create_string_utf8(env, clmul ? "clmul" : "table", NAPI_AUTO_LENGTH, &result);
  return result;
}
