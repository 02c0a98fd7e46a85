/*
 * flushpoint's native calls, each on libuv's thread pool, each -> Promise<void> (rejects with an Error
 * whose `code` is the errno name, e.g. 'EBADF'; 'ENOSYS' where the platform lacks the call):
 *
 *   dropCache(fd, offset, length)  posix_fadvise(POSIX_FADV_DONTNEED). node:fs has no fadvise, and a log
 *                                  that grows fills the page cache with its own durable bytes; dropping
 *                                  them behind the writer lets the kernel reuse the same memory
 *                                  (docs/decisions.md, "The page cache of a growing log").
 *   writeBack(fd, offset, length)  sync_file_range(WAIT_BEFORE | WRITE | WAIT_AFTER): writes the range's
 *                                  dirty pages and waits for them, with no journal commit and no cache
 *                                  flush (durability still takes an fdatasync). The zero-fill writes
 *                                  its step in pieces, each written back before the next, so a commit's
 *                                  fdatasync in the same file never finds a whole step of zeros dirty.
 *
 * For both, a length of 0 means: to the end of the file, as in the system calls.
 *
 *   touchPages(uint8Array)         stores a zero into one byte of every page of the array's memory, which
 *                                  must not be in use yet (its bytes are changed), so its page faults are taken on the pool's
 *                                  thread instead of at its first use on the event loop: the engine's
 *                                  value slabs (engine/value-slabs.ts). The array is referenced until the
 *                                  call completes, and by no other heap (a worker thread that was handed
 *                                  the memory kept it alive until its own GC, which hardly ever ran).
 *
 * And two synchronous calls:
 *
 *   adjustExternalMemory(delta)    napi_adjust_external_memory: tells V8 of memory outside its heap that it
 *                                  should collect for (the engine's value slabs, once the index no longer
 *                                  holds them: engine/value-slabs.ts). Returns the new total, in bytes.
 *   recordCrcWalk(...)             in fs/native/record-crc.c: the records' CRCs of a recovery scan's window.
 *
 * Plain N-API (node_api.h), no dependency.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <node_api.h>
#include <unistd.h>
#include <uv.h>

enum { OP_DROP_CACHE, OP_WRITE_BACK };

typedef struct {
  int op;
  napi_async_work work;
  napi_deferred deferred;
  int fd;
  int64_t offset;
  int64_t length;
  int error;
} DropCall;

static void drop_execute(napi_env env, void *data) {
  (void)env;
  DropCall *call = (DropCall *)data;
  if (call->op == OP_WRITE_BACK) {
#if defined(__linux__) && defined(SYNC_FILE_RANGE_WRITE)
    unsigned int flags = SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER;
    call->error = sync_file_range(call->fd, (off_t)call->offset, (off_t)call->length, flags) == 0 ? 0 : errno;
#else
    call->error = ENOSYS;
#endif
    return;
  }
#if defined(POSIX_FADV_DONTNEED)
  call->error = posix_fadvise(call->fd, (off_t)call->offset, (off_t)call->length, POSIX_FADV_DONTNEED);
#else
  call->error = ENOSYS;
#endif
}

/* Resolves `deferred` (error 0) or rejects it with an Error whose code is the errno name. */
static void settle(napi_env env, napi_deferred deferred, int error) {
  if (error == 0) {
    napi_value undefined;
    napi_get_undefined(env, &undefined);
    napi_resolve_deferred(env, deferred, undefined);
    return;
  }
  const char *name = uv_err_name(-error);
  napi_value code, message, err;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, strerror(error), NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, code, message, &err);
  napi_reject_deferred(env, deferred, err);
}

/*
 * Creates and queues the async work of a call (`data`, freed by the caller when this fails), with its
 * promise in *promise. On failure it throws and returns false; the work is deleted.
 */
static bool queue_work(napi_env env, const char *fname, napi_async_execute_callback execute, napi_async_complete_callback complete, void *data, napi_async_work *work, napi_deferred *deferred, napi_value *promise) {
  napi_value name;
  napi_create_promise(env, deferred, promise);
  napi_create_string_utf8(env, fname, NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, NULL, name, execute, complete, data, work) != napi_ok) {
    napi_throw_error(env, "EIO", "could not queue the call");
    return false;
  }
  if (napi_queue_async_work(env, *work) != napi_ok) {
    napi_delete_async_work(env, *work);
    napi_throw_error(env, "EIO", "could not queue the call");
    return false;
  }
  return true;
}

static void drop_complete(napi_env env, napi_status status, void *data) {
  DropCall *call = (DropCall *)data;
  settle(env, call->deferred, status == napi_ok ? call->error : ECANCELED);
  napi_delete_async_work(env, call->work);
  free(call);
}

/* A whole number in [0, max] (no NaN, no infinity, no fraction), or -1. */
static double whole(napi_env env, napi_value value, double max) {
  double d;
  if (napi_get_value_double(env, value, &d) != napi_ok) return -1;
  if (!(d >= 0 && d <= max) || d != floor(d)) return -1;
  return d;
}

static napi_value queue(napi_env env, napi_callback_info info, int op, const char *fname) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  const double safe_max = 9007199254740991.0; /* Number.MAX_SAFE_INTEGER */
  double fd = argc == 3 ? whole(env, argv[0], 2147483647.0) : -1;
  double offset = argc == 3 ? whole(env, argv[1], safe_max) : -1;
  double length = argc == 3 ? whole(env, argv[2], safe_max) : -1;
  if (fd < 0 || offset < 0 || length < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", op == OP_WRITE_BACK ? "writeBack(fd, offset, length) takes three non-negative safe integers" : "dropCache(fd, offset, length) takes three non-negative safe integers");
    return NULL;
  }
  DropCall *call = (DropCall *)calloc(1, sizeof(DropCall));
  if (call == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  call->op = op;
  call->fd = (int)fd;
  call->offset = (int64_t)offset;
  call->length = (int64_t)length;
  napi_value promise;
  if (!queue_work(env, fname, drop_execute, drop_complete, call, &call->work, &call->deferred, &promise)) {
    free(call);
    return NULL;
  }
  return promise;
}

static napi_value drop_cache(napi_env env, napi_callback_info info) {
  return queue(env, info, OP_DROP_CACHE, "flushpoint.dropCache");
}

static napi_value write_back(napi_env env, napi_callback_info info) {
  return queue(env, info, OP_WRITE_BACK, "flushpoint.writeBack");
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref array;
  uint8_t *data;
  size_t length;
} TouchCall;

static void touch_execute(napi_env env, void *data) {
  (void)env;
  TouchCall *call = (TouchCall *)data;
  long page = sysconf(_SC_PAGESIZE);
  size_t step = page > 0 ? (size_t)page : 4096;
  /* A plain store: an atomic OR of 0 here measured 13% slower puts (docs/decisions.md, "Value slabs"). */
  volatile uint8_t *bytes = call->data;
  for (size_t i = 0; i < call->length; i += step) bytes[i] = 0;
}

static void touch_complete(napi_env env, napi_status status, void *data) {
  TouchCall *call = (TouchCall *)data;
  napi_delete_reference(env, call->array);
  settle(env, call->deferred, status == napi_ok ? 0 : ECANCELED);
  napi_delete_async_work(env, call->work);
  free(call);
}

static napi_value touch_pages(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  bool is_array = false;
  if (argc == 1) napi_is_typedarray(env, argv[0], &is_array);
  napi_typedarray_type type = napi_int8_array;
  size_t length = 0;
  void *bytes = NULL;
  if (is_array && napi_get_typedarray_info(env, argv[0], &type, &length, &bytes, NULL, NULL) != napi_ok) is_array = false;
  if (!is_array || type != napi_uint8_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "touchPages(bytes) takes a Uint8Array");
    return NULL;
  }
  TouchCall *call = (TouchCall *)calloc(1, sizeof(TouchCall));
  if (call == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  call->data = (uint8_t *)bytes;
  call->length = length;
  if (napi_create_reference(env, argv[0], 1, &call->array) != napi_ok) {
    free(call);
    napi_throw_error(env, "EIO", "could not hold the array");
    return NULL;
  }
  napi_value promise;
  if (!queue_work(env, "flushpoint.touchPages", touch_execute, touch_complete, call, &call->work, &call->deferred, &promise)) {
    napi_delete_reference(env, call->array);
    free(call);
    return NULL;
  }
  return promise;
}

static napi_value adjust_external_memory(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  double delta = 0;
  const double safe_max = 9007199254740991.0; /* Number.MAX_SAFE_INTEGER */
  if (argc != 1 || napi_get_value_double(env, argv[0], &delta) != napi_ok || !(delta >= -safe_max && delta <= safe_max) || delta != floor(delta)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "adjustExternalMemory(delta) takes a safe integer");
    return NULL;
  }
  int64_t total = 0;
  if (napi_adjust_external_memory(env, (int64_t)delta, &total) != napi_ok) {
    napi_throw_error(env, "EIO", "napi_adjust_external_memory failed");
    return NULL;
  }
  napi_value result;
  napi_create_double(env, (double)total, &result);
  return result;
}

/* fs/native/record-crc.c */
napi_value record_crc_walk(napi_env env, napi_callback_info info);
napi_value record_crc_fill(napi_env env, napi_callback_info info);
napi_value record_crc_method(napi_env env, napi_callback_info info);

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "dropCache", NAPI_AUTO_LENGTH, drop_cache, NULL, &fn);
  napi_set_named_property(env, exports, "dropCache", fn);
  napi_create_function(env, "writeBack", NAPI_AUTO_LENGTH, write_back, NULL, &fn);
  napi_set_named_property(env, exports, "writeBack", fn);
  napi_create_function(env, "touchPages", NAPI_AUTO_LENGTH, touch_pages, NULL, &fn);
  napi_set_named_property(env, exports, "touchPages", fn);
  napi_create_function(env, "adjustExternalMemory", NAPI_AUTO_LENGTH, adjust_external_memory, NULL, &fn);
  napi_set_named_property(env, exports, "adjustExternalMemory", fn);
  napi_create_function(env, "recordCrcWalk", NAPI_AUTO_LENGTH, record_crc_walk, NULL, &fn);
  napi_set_named_property(env, exports, "recordCrcWalk", fn);
  napi_create_function(env, "recordCrcFill", NAPI_AUTO_LENGTH, record_crc_fill, NULL, &fn);
  napi_set_named_property(env, exports, "recordCrcFill", fn);
  napi_create_function(env, "recordCrcMethod", NAPI_AUTO_LENGTH, record_crc_method, NULL, &fn);
  napi_set_named_property(env, exports, "recordCrcMethod", fn);
  return exports;
}
