import { cpSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, scratchDir } from './helpers';

type ErrorsModule = typeof import('../src/common/errors');

// An adapter from one installed copy of the package may meet an agent from another.
describe('SocketLeakError from another installed copy of the package', () => {
  const load = (dist: string) => createRequire(path.join(dist, 'x.js'))('./common/errors.js') as ErrorsModule;
  const ours = load(path.join(ROOT, 'dist'));
  const copy = path.join(scratchDir('copy'), 'dist');
  cpSync(path.join(ROOT, 'dist'), copy, { recursive: true });
  const theirs = load(copy);

  it('is recognised, by its code, with isSocketLeakError and instanceof alike', () => {
    expect(theirs.SocketLeakError).not.toBe(ours.SocketLeakError);
    const error = new theirs.SocketLeakError([]);
    expect(ours.isSocketLeakError(error)).toBe(true);
    expect(error instanceof ours.SocketLeakError).toBe(true);
  });

  it('is not confused with another error', () => {
    const other = Object.assign(new Error('x'), { code: 'ERR_TCP_LEAK_AGENT_SOCKET_LEAK' });
    expect(ours.isSocketLeakError(other)).toBe(false);
    expect(other instanceof ours.SocketLeakError).toBe(false);
    expect(ours.isSocketLeakError(new Error('x'))).toBe(false);
  });
});
