/** Every limit of the admin endpoint, with its unit (one place, as wal/limits.ts does for the WAL). */

/** Largest request body the admin server reads; a longer one is answered 413 and the connection closed. */
export const ADMIN_BODY_BYTES_MAX = 16 * 1024;
/** Time a client has to send a whole request (headers and body); then 408 and the connection is closed. */
export const ADMIN_REQUEST_TIMEOUT_MS_DEFAULT = 10_000;
/** Time a client has to send the request headers (Node's headersTimeout; never above the request timeout). */
export const ADMIN_HEADERS_TIMEOUT_MS_DEFAULT = 5_000;
/** An idle keep-alive connection is closed after this long. */
export const ADMIN_KEEP_ALIVE_TIMEOUT_MS = 5_000;
/** Connections served at once; more are refused by the kernel's backlog, then dropped. */
export const ADMIN_CONNECTIONS_COUNT_MAX = 1024;
/** Longest timeoutMs a force-flush or drain request may ask for (2^31-1 ms: Node's timer limit). */
export const ADMIN_OPERATION_TIMEOUT_MS_MAX = 2 ** 31 - 1;
/** timeoutMs of a force-flush or drain request that gives none. */
export const ADMIN_OPERATION_TIMEOUT_MS_DEFAULT = 60_000;
/** Time the stale-socket probe waits for a connect to answer before it calls the path live and refuses it. */
export const ADMIN_PROBE_TIMEOUT_MS = 2_000;
/** Longest Unix socket path, in bytes (sockaddr_un.sun_path is 108 bytes on Linux, NUL included). */
export const UNIX_SOCKET_PATH_BYTES_MAX = 107;
/** The response header every answer of a flushpoint admin endpoint carries (the CLI checks it). */
export const ADMIN_HEADER = 'x-flushpoint-admin';
/** Its value: the version of the admin protocol. */
export const ADMIN_PROTOCOL_VERSION = '1';

/** At close, how long the 503 answers to requests in flight may take to leave before every connection is ended, in ms. */
export const ADMIN_CLOSE_ANSWER_MS = 1_000;
