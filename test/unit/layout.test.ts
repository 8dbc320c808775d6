import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

// The layout's two rules, over every import of src/ including type-only ones (the linter's
// cycle check skips those): no import cycles, and no stage imports a later one.
const SRC = path.join(__dirname, '..', '..', 'src');
const STAGES = ['common', 'remembered', 'seen', 'measured', 'judged', 'explained', 'told', 'agent', 'adapters', 'cli'];

function modules(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? modules(path.join(dir, entry.name)) : /\.m?ts$/.test(entry.name) ? [path.join(dir, entry.name)] : [],
  );
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const match of text.matchAll(/(?:from|import\()\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
    const target = path.resolve(path.dirname(file), match[1]!).replace(/\.m?js$/, '');
    found.push([`${target}.ts`, `${target}.mts`].find((candidate) => modules(path.dirname(candidate)).includes(candidate)) ?? target);
  }
  return found;
}

const graph = new Map(modules(SRC).map((file) => [file, importsOf(file)]));
const stageOf = (file: string) => STAGES.indexOf(path.relative(SRC, file).split(path.sep)[0]!);

describe('the layout of src/', () => {
  it('has no import cycle, type-only imports included', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (file: string, trail: string[]) => {
      state.set(file, 'open');
      for (const next of graph.get(file) ?? []) {
        if (state.get(next) === 'open') cycles.push([...trail.slice(trail.indexOf(next)), next].map((f) => path.relative(SRC, f)).join(' -> '));
        else if (!state.has(next)) visit(next, [...trail, next]);
      }
      state.set(file, 'done');
    };
    for (const file of graph.keys()) if (!state.has(file)) visit(file, [file]);
    expect(cycles).toEqual([]);
  });

  it('has no stage importing a later stage, and no stage importing an entry point', () => {
    const wrong: string[] = [];
    for (const [file, imports] of graph) {
      const stage = stageOf(file);
      if (stage < 0) continue; // an entry point: it may import any stage
      for (const target of imports) {
        const other = stageOf(target);
        const peers = STAGES[stage] === 'adapters' || STAGES[stage] === 'cli';
        if (other < 0 || (other > stage && !(peers && STAGES[other] !== 'cli' && STAGES[other] !== 'adapters'))) {
          wrong.push(`${path.relative(SRC, file)} -> ${path.relative(SRC, target)}`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });
});
