// abstract-level's shared suite (tape) against the Engine on the real disk. Needs `npm run build`.
// Prints each failing assertion (with the test's name), then one plain line "N passed, N failed";
// exits non-zero on any failure.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { Engine } from '../../dist/engine/index.js';

const require = createRequire(import.meta.url);
const test = require('tape');
const suite = require('abstract-level/test');

const root = mkdtempSync(path.join(tmpdir(), 'flushpoint-abstract-level-'));
let n = 0;
// Small segments keep the per-database preallocation cheap (the suite opens thousands of databases).
const factory = (options) => new Engine(path.join(root, `db${n++}`), { wal: { segmentSizeBytes: 256 * 1024 }, ...options });

let passed = 0;
let failed = 0;
const stream = test.createStream({ objectMode: true });
const names = new Map();
stream.on('data', (row) => {
  if (row.type === 'test') names.set(row.id, row.name);
  if (row.type === 'assert') {
    if (row.ok) passed++;
    else {
      failed++;
      console.log(`not ok ${row.id} ${names.get(row.test) ?? '?'}: ${row.name}`);
      if (row.error) console.log(`  ${String(row.error.stack ?? row.error).split('\n').slice(0, 4).join('\n  ')}`);
    }
  }
});
test.onFinish(() => {
  rmSync(root, { recursive: true, force: true });
  console.log(`# databases opened: ${n}`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed === 0 && passed > 0 ? 0 : 1;
});
test.onFailure(() => {
  process.exitCode = 1;
});
suite({ test, factory });
