import { describe, expect, it } from 'vitest';
import { failOnLeakRequested, optionsFromEnvironment } from '../../src/agent/environment';
import { InvalidSettingError } from '../../src/common/errors';
import { DEFAULT_OPTIONS, resolveOptions } from '../../src/common/options';

describe('options from the environment', () => {
  it('reads each variable into its option; unset or empty keeps the default', () => {
    expect(optionsFromEnvironment({ TCP_LEAK_AGENT_INTERVAL_MS: '250', TCP_LEAK_AGENT_CLOSE_WAIT_MS: '', TCP_LEAK_AGENT_STACKS: 'all' })).toEqual({
      intervalMs: 250,
      stacks: 'all',
    });
  });

  it.each([
    ['TCP_LEAK_AGENT_INTERVAL_MS', '1e3'],
    ['TCP_LEAK_AGENT_CLOSE_WAIT_MS', '-5'],
    ['TCP_LEAK_AGENT_STALL_MS', 'soon'],
  ])('refuses %s=%s in one message naming the variable, the value and what is accepted', (variable, value) => {
    const error = (() => {
      try {
        resolveOptions(optionsFromEnvironment({ [variable]: value }));
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(InvalidSettingError);
    expect((error as Error).message).toMatch(new RegExp(`^${variable}=${JSON.stringify(value).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is not accepted: expected `));
  });

  it('TCP_LEAK_AGENT_FAIL_ON_LEAK: any value but empty, 0 or false asks for it', () => {
    expect(['1', 'true', 'yes'].map((value) => failOnLeakRequested({ TCP_LEAK_AGENT_FAIL_ON_LEAK: value }))).toEqual([true, true, true]);
    expect(['', '0', 'false', 'FALSE'].map((value) => failOnLeakRequested({ TCP_LEAK_AGENT_FAIL_ON_LEAK: value }))).toEqual([false, false, false, false]);
    expect(failOnLeakRequested({})).toBe(false);
  });
});

describe('resolveOptions', () => {
  it('fills every default', () => {
    const resolved = resolveOptions({}, {});
    for (const [key, value] of Object.entries(DEFAULT_OPTIONS)) {
      if (key !== 'stacks') expect(resolved[key as keyof typeof resolved], key).toEqual(value);
    }
  });

  it('refuses an unknown option by name', () => {
    expect(() => resolveOptions({ closeWait: 5 } as never)).toThrow(/closeWait/);
  });
});
