/**
 * The README's "Errors" section lists every stable code the library throws: a first-use review found
 * WAL_TRUNCATED and BACKUP_NOT_FOUND thrown but not listed, so a user could not look them up.
 */
import fs from 'node:fs';
import { expect, it } from 'vitest';
import { ErrorCode } from '../core/errors.js';

it("every ErrorCode is named in the README's Errors section", () => {
  const readme = fs.readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const start = readme.indexOf('\n## Errors\n');
  expect(start).toBeGreaterThan(0);
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
  const missing = Object.values(ErrorCode).filter((code) => !section.includes(`\`${code}\``));
  expect(missing).toEqual([]);
});
