/*
 * recordCrcWalk(uint8Array, start, end, recordBytesMax) -> number: checks the CRC-32 of the framed records
 * (record/format.ts) that follow one another in [start, end) from `start`, walking them by their payload
 * length, and returns the offset where the walk stopped: the end of the last record whose CRC matched. It
 * stops at a header that does not fit, an impossible length, a record that runs past `end`, a record
 * larger than `recordBytesMax` (zlib.crc32 is faster on those: the caller checks them), or a CRC that does
 * not match (an all-zero header never matches). Everything else about a record (LSN, salt, the end of data) is
 * decided by the caller, in JavaScript; this only takes the one CRC per record off the event loop's
 * JavaScript during recovery, where it was half the time (docs/decisions.md, "Recovery's CRCs").
 *
 * recordCrcFill(uint8Array, start, end, recordBytesMax) -> number: the other direction, for the WAL's appends
 * (wal/staging.ts): walks the records framed in [start, end) the same way and stores each one's CRC-32
 * (little-endian, at its start), leaving records larger than `recordBytesMax` as they are (the caller
 * computed theirs: zlib.crc32 is faster there). Returns where the walk stopped: `end` when the records
 * tile the range. One call per run of staged records instead of one JavaScript CRC per record, which was
 * the largest part of the event loop's work per record (docs/decisions.md, "Appends' CRCs in the addon").
 *
 * CRC-32 as zlib computes it (reflected polynomial 0xEDB88320), slicing by 16, reading bytes (no alignment
 * or byte-order assumption). Synchronous: a call covers one scan window (4 MiB).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <node_api.h>

#define RECORD_HEADER_BYTES 24
#define RECORD_PAYLOAD_BYTES_OFFSET 4
#define PAYLOAD_BYTES_MAX_FORMAT 0xfffffff0u

static uint32_t table[16][256];
/* Worker threads may load the addon and recover at once: the table is made once, by whichever comes first. */
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void make_table(void) {
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

static uint32_t crc32_bytes(const uint8_t *p, size_t n) {
  uint32_t c = 0xffffffffu;
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
  return c ^ 0xffffffffu;
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
