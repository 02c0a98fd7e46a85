/**
 * Progress of a long command (a benchmark run, a verify, a restore): a one-line bar redrawn in place,
 * only when the stream is a terminal. Anywhere else (a pipe, a file, CI) it prints nothing, so the
 * report is all that reaches the output. Redraws are throttled: the measured loops call advance()
 * often, and drawing must not become the load. It lives in core/ so that cli/ and bench/ share it
 * without the backup command loading the benchmark.
 */

export interface Progress {
  /** Starts a section made of `stepsCount` steps. */
  section(title: string, stepsCount: number): void;
  /** Starts the next step of the current section. */
  step(label: string): void;
  /** How much of the current step is done, in [0, 1]. Cheap to call often. */
  advance(fraction: number): void;
  /** Clears the line. */
  done(): void;
}

export const silentProgress: Progress = {
  section() {},
  step() {},
  advance() {},
  done() {},
};

interface TtyStream {
  isTTY?: boolean;
  columns?: number;
  write(text: string): boolean;
}

const redrawIntervalMs = 100;
const barWidthChars = 24;

class TtyProgress implements Progress {
  readonly #stream: TtyStream;
  readonly #startedAtMs = Date.now();
  #title = '';
  #stepsCount = 1;
  #stepIndex = -1;
  #label = '';
  #fraction = 0;
  #drawnAtMs = 0;

  constructor(stream: TtyStream) {
    this.#stream = stream;
  }

  section(title: string, stepsCount: number): void {
    if (!(Number.isSafeInteger(stepsCount) && stepsCount >= 1)) throw new RangeError(`stepsCount must be >= 1, got ${stepsCount}`);
    this.#title = title;
    this.#stepsCount = stepsCount;
    this.#stepIndex = -1;
    this.#label = '';
    this.#fraction = 0;
    this.#draw(true);
  }

  step(label: string): void {
    this.#stepIndex = Math.min(this.#stepIndex + 1, this.#stepsCount - 1);
    this.#label = label;
    this.#fraction = 0;
    this.#draw(true);
  }

  advance(fraction: number): void {
    this.#fraction = Math.min(1, Math.max(0, fraction));
    this.#draw(false);
  }

  done(): void {
    this.#stream.write('\r\x1b[2K');
  }

  #draw(force: boolean): void {
    const nowMs = Date.now();
    if (!force && nowMs - this.#drawnAtMs < redrawIntervalMs) return;
    this.#drawnAtMs = nowMs;
    const overall = (Math.max(0, this.#stepIndex) + this.#fraction) / this.#stepsCount;
    const filled = Math.round(overall * barWidthChars);
    const bar = '#'.repeat(filled) + '.'.repeat(barWidthChars - filled);
    const elapsedS = Math.round((nowMs - this.#startedAtMs) / 1000);
    const step = `${Math.max(0, this.#stepIndex) + 1}/${this.#stepsCount}`;
    const line = `[${bar}] ${step} ${this.#title}: ${this.#label}  ${elapsedS}s`;
    const columns = this.#stream.columns !== undefined && this.#stream.columns > 0 ? this.#stream.columns : 80;
    const width = Math.max(20, columns - 1);
    this.#stream.write(`\r\x1b[2K${line.length > width ? line.slice(0, width) : line}`);
  }
}

/** A bar on `stream` when it is a terminal; otherwise silence. */
export function createProgress(stream: TtyStream): Progress {
  return stream.isTTY === true ? new TtyProgress(stream) : silentProgress;
}
