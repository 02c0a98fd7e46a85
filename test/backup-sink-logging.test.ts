/** The sink logs through a child logger tagged { component: 'backup' }, with Error objects under `err`. */
import { describe, expect, it } from 'vitest';
import type { Logger } from '../core/logger.js';
import { appendDurable, until } from './helpers/backup-fixtures.js';
import { sinkFixture } from './helpers/held-flush.js';

interface Line {
  level: 'info' | 'warn' | 'error';
  bindings: object;
  obj: Record<string, unknown>;
  msg: string | undefined;
}

/** A pino-shaped logger that records every line with the bindings of the child that wrote it. */
function recordingLogger(lines: Line[], bindings: object = {}): Logger & { child(b: object): Logger } {
  const at = (level: Line['level']) => (obj: object, msg?: string) => lines.push({ level, bindings, obj: obj as Record<string, unknown>, msg });
  return { info: at('info'), warn: at('warn'), error: at('error'), child: (b: object) => recordingLogger(lines, { ...bindings, ...b }) };
}

describe('BackupSink logging', () => {
  it('logs through a child { component: "backup" }, and failures carry the Error object under err', async () => {
    const lines: Line[] = [];
    await using fixture = await sinkFixture({ logger: recordingLogger(lines), retryDelayMsMin: 1, retryDelayMsMax: 2, failuresCountMax: 2 });
    const { wal, sink, bfs } = fixture;
    await appendDurable(wal, 5);
    bfs.inject({ op: 'datasync', path: /\.fpb\.tmp$/, error: 'EIO', times: Infinity });
    await expect(sink.forceFlush()).rejects.toMatchObject({ code: 'BACKUP_FAILED' });
    await until(() => sink.paused, 'the sink to pause');
    await sink.close().catch(() => {});
    await wal.close();
    expect(lines.some((l) => l.msg === 'backup sink opened')).toBe(true);
    for (const l of lines) expect(l.bindings, l.msg).toEqual({ component: 'backup' });
    const failures = lines.filter((l) => l.level !== 'info');
    expect(failures.map((l) => l.msg)).toContain('backup flush failed');
    expect(failures.map((l) => l.msg)).toContain('backup sink paused after repeated failures');
    for (const l of failures) {
      expect(l.obj.err, l.msg).toBeInstanceOf(Error);
      expect((l.obj.err as Error).message, l.msg).toMatch(/EIO/);
    }
  });

  it('uses a logger without child as it is', async () => {
    const lines: Line[] = [];
    const { info, warn, error } = recordingLogger(lines);
    await using fixture = await sinkFixture({ logger: { info, warn, error } });
    const { wal, sink } = fixture;
    await sink.close();
    await wal.close();
    expect(lines.map((l) => l.msg)).toContain('backup sink opened');
  });
});
