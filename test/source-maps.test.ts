import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';
import { beforeAll, describe, expect, it } from 'vitest';
import { escapeRegExp, explain, FAST, FIXTURES, markerLine, runFixture, type RunResult } from './helpers';

const source = path.join(FIXTURES, 'typescript', 'unread-body.ts');

beforeAll(() => {
  // Compile the fixture the way a TypeScript project would: CommonJS with a source map.
  const output = ts.transpileModule(readFileSync(source, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, sourceMap: true },
    fileName: 'unread-body.ts',
  });
  writeFileSync(source.replace(/\.ts$/, '.js'), output.outputText);
  writeFileSync(source.replace(/\.ts$/, '.js.map'), output.sourceMapText!);
});

/** A text run that exited 0, its report located and framed at the TypeScript file's LEAK line. */
function expectLocatedInTypeScript(result: RunResult): void {
    expect(result.code, explain(result)).toBe(0);
    const line = markerLine('typescript/unread-body.ts');
    const lines = result.stderr.split('\n');
    expect(lines[0], explain(result)).toMatch(new RegExp(`^${escapeRegExp(source)}:${line}:\\d+ in fetchReport: `));
    expect(result.stderr).toContain(`${line} |   http.get(request, () => {}); // LEAK`);
}

describe('with source maps', () => {
  it('the location and the code frame point into the original TypeScript', async () => {
    const result = await runFixture('typescript/unread-body.js', {
      env: { ...FAST, TCP_LEAK_AGENT_FORMAT: 'text' },
      nodeArgs: ['--enable-source-maps', '--require', 'tcp-leak-agent/register'],
    });
    expectLocatedInTypeScript(result);
  });

  it('without them, the location is the compiled JavaScript line', async () => {
    const result = await runFixture('typescript/unread-body.js', { env: FAST });
    expect(result.code, explain(result)).toBe(0);
    expect(result.leaks[0]!.location?.file).toBe(source.replace(/\.ts$/, '.js'));
    expect(result.leaks[0]!.location?.line).not.toBe(markerLine('typescript/unread-body.ts'));
  });
});

// A loader that compiles each .ts file in memory as it is required (as tsx and ts-node do): V8
// names the .ts file with positions in the compiled text, and Node applies no source map.
describe('code compiled in memory by a loader', () => {
  it("with the transpiler's inline source map, is located and framed in the TypeScript source", async () => {
    const result = await runFixture('compile-ts-in-memory.js', { args: ['inline-map'], env: { ...FAST, TCP_LEAK_AGENT_FORMAT: 'text' } });
    expectLocatedInTypeScript(result);
  });

  it('without one, names no line of the file: no code frame, and the position is said to be compiled', async () => {
    const text = await runFixture('compile-ts-in-memory.js', { env: { ...FAST, TCP_LEAK_AGENT_FORMAT: 'text' } });
    expect(text.code, explain(text)).toBe(0);
    const lines = text.stderr.split('\n');
    expect(lines[0], explain(text)).toMatch(new RegExp(`^${escapeRegExp(source)} \\(compiled \\d+:\\d+\\) in fetchReport: `));
    expect(text.stderr, explain(text)).not.toMatch(/^\s+\d+ \| /m);
    expect(text.stderr, explain(text)).toContain('in the code a loader compiled from');
    const json = await runFixture('compile-ts-in-memory.js', { env: FAST });
    expect(json.leaks[0]!.location, explain(json)).toMatchObject({ file: source, compiled: true });
  });
});
