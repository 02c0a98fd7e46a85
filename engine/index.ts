/** The engine's facade: the only module of engine/ that other layers (bench/, index.ts, cli/) import. */
export { Engine, type EngineOptions, type CheckpointResult, type EngineStats, type EngineRecovery, type EngineKey, type WriteOptions } from './engine.js';
export type { EngineOwnOptions, EngineWalOptions, EngineBackupOptions } from './options.js';
export { msgpackEncoding } from './msgpack-encoding.js';
export { ADMIN_HEADER, ADMIN_OPERATION_TIMEOUT_MS_MAX, installShutdownHandlers, DrainTimeoutError, type ShutdownOptions, type Drainable, type DrainOptions, type DrainResult } from './admin/index.js';
export type { EngineAdminOptions } from './admin/engine-admin.js';
export { readCheckpoint as readEngineCheckpoint, checkpointLsnOf, CheckpointDamage } from './checkpoint-file.js';
export type { ValueSlabStats } from './value-slabs.js';
