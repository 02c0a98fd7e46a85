export const TEST_ACCESS_KEY_ID: string;
export const TEST_SECRET_ACCESS_KEY: string;
export interface CephHandle {
  readonly dir: string;
  readonly endpoint: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly stateFile: string;
  readonly rgwPid: number;
  pauseRgw(): void;
  resumeRgw(): void;
  stopRgw(): Promise<void>;
  startRgw(): Promise<void>;
  stop(options?: { keepDir?: boolean }): Promise<{ left: number[] }>;
}
export function installCeph(log?: (line: string) => void): void;
export function startCeph(options?: { store?: 'memstore' | 'bluestore'; log?: (line: string) => void }): Promise<CephHandle>;
export function loadCeph(stateFile: string): CephHandle;
export function processState(pid: number): string;
export function isRunning(pid: number): boolean;
export function serveControl(handle: CephHandle): () => Promise<void>;
