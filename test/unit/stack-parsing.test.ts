import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DIST_DIR } from '../../src/common/package-paths';
import { framesOf, trimFrames, userLocation } from '../../src/common/stack';
import type { Location } from '../../src/common/types';

// Real creation stacks, captured by the agent on each Node version (golden/capture-stacks.cjs),
// with the agent's dist/ as <DIST> and the capturing folder as /app.
interface Golden {
  node: string;
  cases: Array<{ name: string; stack: string }>;
}

/** Where each case must be located: the first frame of the program's own code. */
const EXPECTED: Record<string, { user: Location; withDependencies: Location }> = {
  'net.connect in a named function': {
    user: { file: '/app/capture-stacks.cjs', line: 31, column: 16, function: 'connectInNamedFunction' },
    withDependencies: { file: '/app/capture-stacks.cjs', line: 31, column: 16, function: 'connectInNamedFunction' },
  },
  'http.get in a callback': {
    user: { file: '/app/capture-stacks.cjs', line: 35, column: 26 },
    withDependencies: { file: '/app/capture-stacks.cjs', line: 35, column: 26 },
  },
  'a dependency opens it for the caller': {
    user: { file: '/app/capture-stacks.cjs', line: 39, column: 71 },
    withDependencies: { file: '/app/node_modules/fake-client/index.js', line: 4, column: 30, function: 'exports.open' },
  },
  'an ES module': {
    user: { file: '/app/esm-connect.mjs', line: 4, column: 14, function: 'Module.openFromEsm' },
    withDependencies: { file: '/app/esm-connect.mjs', line: 4, column: 14, function: 'Module.openFromEsm' },
  },
};

for (const major of [22, 24, 26]) {
  const golden = JSON.parse(readFileSync(path.join(__dirname, 'golden', `stacks-node${major}.json`), 'utf8')) as Golden;
  describe(`stack parsing, Node ${golden.node}`, () => {
    for (const { name, stack } of golden.cases) {
      const capture = { stack: stack.split('<DIST>').join(DIST_DIR) };
      it(`${name}: the location is the program's first frame`, () => {
        const frames = trimFrames(framesOf(capture));
        expect(userLocation(frames, true)).toEqual(EXPECTED[name]!.user);
        expect(userLocation(frames, false)).toEqual(EXPECTED[name]!.withDependencies);
      });
      it(`${name}: the agent's own frames and the channel's are trimmed from what is shown`, () => {
        const frames = trimFrames(framesOf(capture));
        expect(frames[0]!.file?.startsWith('node:net')).toBe(true);
        expect(frames.some((frame) => frame.file?.startsWith(DIST_DIR))).toBe(false);
      });
    }
  });
}
