/** The admin endpoint, drain and shutdown handling: what the Engine wires in (engine/engine.ts). */
export { AdminServer, statusOf, type AdminServerOptions } from './server.js';
export { probeSocket, SOCKET_MODE } from './socket.js';
export { Drainer, DrainTimeoutError, type DrainOptions, type DrainOutcome, type DrainSources, type DrainStats } from './drain.js';
export { installShutdownHandlers, type Drainable, type ShutdownOptions } from './shutdown.js';
export { walAdminTarget, walStatusOf, type WalAdminSources } from './wal-target.js';
export type { AdminTarget, AdminStatus, AdminMetrics, AdminForceFlushRequest, AdminForceFlushResult, AdminDrainRequest, DrainResult } from './target.js';
export * from './limits.js';
