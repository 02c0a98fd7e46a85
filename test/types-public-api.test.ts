/**
 * Every type a public signature uses can be imported from 'flushpoint' (what API Extractor calls a
 * forgotten export). Walks the declarations of everything dist/index.d.ts exports, with the TypeScript
 * compiler's checker, through every type they reference that is declared in flushpoint's own .d.ts
 * files; private members are skipped. Needs `npm run build` (npm test builds first).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const distDir = path.join(root, 'dist') + path.sep;

function isPrivateMember(node: ts.Node): boolean {
  const name = (node as { name?: ts.Node }).name;
  if (name !== undefined && ts.isPrivateIdentifier(name)) return true;
  return ts.canHaveModifiers(node) && (ts.getModifiers(node) ?? []).some((m) => m.kind === ts.SyntaxKind.PrivateKeyword);
}

/** Types declared in flushpoint's .d.ts files that a public declaration uses but index.d.ts does not export: name -> a user. */
function forgottenExports(indexDts: string): Map<string, string> {
  const program = ts.createProgram([indexDts], {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
    types: ['node'],
  });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(indexDts);
  if (source === undefined) throw new Error(`${indexDts} not found: run npm run build`);
  const moduleSymbol = checker.getSymbolAtLocation(source);
  if (moduleSymbol === undefined) throw new Error(`${indexDts} is not a module`);
  const resolve = (s: ts.Symbol): ts.Symbol => ((s.flags & ts.SymbolFlags.Alias) !== 0 ? checker.getAliasedSymbol(s) : s);
  const ours = (decl: ts.Node): boolean => decl.getSourceFile().fileName.startsWith(distDir.split(path.sep).join('/'));
  const exported = new Set(checker.getExportsOfModule(moduleSymbol).map(resolve));
  const missing = new Map<string, string>();
  const visited = new Set<ts.Symbol>();
  const queue: Array<{ symbol: ts.Symbol; user: string }> = [...exported].map((symbol) => ({ symbol, user: symbol.name }));

  const walk = (node: ts.Node, user: string): void => {
    if (isPrivateMember(node)) return;
    let nameNode: ts.Node | undefined;
    if (ts.isTypeReferenceNode(node)) nameNode = node.typeName;
    else if (ts.isExpressionWithTypeArguments(node)) nameNode = node.expression;
    else if (ts.isTypeQueryNode(node)) nameNode = node.exprName;
    if (nameNode !== undefined) {
      const found = checker.getSymbolAtLocation(nameNode);
      if (found !== undefined) {
        const symbol = resolve(found);
        if ((symbol.flags & ts.SymbolFlags.TypeParameter) === 0 && (symbol.declarations ?? []).some(ours)) {
          if (!exported.has(symbol) && !missing.has(symbol.name)) missing.set(symbol.name, user);
          queue.push({ symbol, user: symbol.name });
        }
      }
    }
    ts.forEachChild(node, (child) => walk(child, user));
  };

  for (let item = queue.pop(); item !== undefined; item = queue.pop()) {
    if (visited.has(item.symbol)) continue;
    visited.add(item.symbol);
    for (const decl of item.symbol.declarations ?? []) if (ours(decl)) walk(decl, item.user);
  }
  return missing;
}

describe('public types', () => {
  it("every type used by a public signature is exported from 'flushpoint'", () => {
    const missing = forgottenExports(path.join(root, 'dist', 'index.d.ts'));
    const lines = [...missing].map(([name, user]) => `${name} (used by ${user})`).sort();
    expect(lines, 'add these to index.ts').toEqual([]);
  });
});
