/**
 * The layout rule (README, "Layout"): every top-level folder is one layer, every import points down the
 * list below or stays inside its folder, there is no import cycle (type-only imports included), and
 * nothing outside wal/ imports a file of wal/ other than its facade, wal/index.ts.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Lower layers first. A file may import its own layer or any layer before it. */
const LAYERS = [['core'], ['fs', 'record'], ['wal'], ['backup'], ['engine'], ['index.ts', 'bench'], ['cli']];
const FACADES: Record<string, string> = { wal: 'wal/index.ts' };

function layerOf(rel: string): number {
  const top = rel.split('/')[0]!;
  const i = LAYERS.findIndex((names) => names.includes(top));
  if (i < 0) throw new Error(`${rel} is in no layer`);
  return i;
}

function sourceFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(path.join(root, dir))) {
      const rel = dir ? `${dir}/${name}` : name;
      if (statSync(path.join(root, rel)).isDirectory()) walk(rel);
      else if (rel.endsWith('.ts') && !rel.endsWith('.d.ts')) out.push(rel);
    }
  };
  for (const names of LAYERS) for (const top of names) {
    if (top.endsWith('.ts')) out.push(top);
    else if (existsSync(path.join(root, top))) walk(top);
  }
  return out;
}

/** Relative imports of a file (static, dynamic, type-only and re-exports), as paths from the root. */
function importsOf(rel: string): string[] {
  const src = readFileSync(path.join(root, rel), 'utf8');
  const out: string[] = [];
  const re = /(?:from\s+|import\s*\(\s*|import\s+)['"](\.{1,2}\/[^'"]+)['"]/g;
  for (const m of src.matchAll(re)) {
    const target = path.posix.normalize(path.posix.join(path.posix.dirname(rel), m[1]!)).replace(/\.js$/, '.ts');
    out.push(target);
  }
  return out;
}

describe('layout', () => {
  const files = sourceFiles();
  const graph = new Map(files.map((f) => [f, importsOf(f)]));

  it('every import points to its own layer or a lower one', () => {
    const bad: string[] = [];
    for (const [from, tos] of graph) {
      for (const to of tos) if (layerOf(to) > layerOf(from)) bad.push(`${from} -> ${to}`);
    }
    expect(bad).toEqual([]);
  });

  it('outside its folder, a layer with a facade is imported only through it', () => {
    const bad: string[] = [];
    for (const [from, tos] of graph) {
      for (const to of tos) {
        const top = to.split('/')[0]!;
        const facade = FACADES[top];
        if (facade && from.split('/')[0] !== top && to !== facade) bad.push(`${from} -> ${to}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('has no import cycle, type-only imports included', () => {
    const state = new Map<string, 'open' | 'done'>();
    const cycles: string[] = [];
    const visit = (f: string, stack: string[]): void => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'open') {
        cycles.push([...stack.slice(stack.indexOf(f)), f].join(' -> '));
        return;
      }
      state.set(f, 'open');
      for (const to of graph.get(f) ?? []) visit(to, [...stack, f]);
      state.set(f, 'done');
    };
    for (const f of files) visit(f, []);
    expect(cycles).toEqual([]);
  });

  it('sees the whole tree (the check can fail)', () => {
    expect(files.length).toBeGreaterThan(40);
    expect(graph.get('backup/sink.ts')).toContain('wal/index.ts');
  });
});
