import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { InvalidSettingError } from '../../src/common/errors';
import { DEFAULT_OPTIONS } from '../../src/common/options';
import { SETTINGS, settingsTable } from '../../src/common/settings';

describe('the settings table', () => {
  it("is the README's options table", () => {
    const readme = readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');
    const table = /<!-- options table:[^\n]*-->\n([\s\S]*?)\n<!-- end of options table -->/.exec(readme);
    expect(table, 'the README has no generated options table').not.toBeNull();
    expect(table![1]).toBe(settingsTable());
  });

  it('gives every option its default', () => {
    expect(Object.keys(DEFAULT_OPTIONS).sort()).toEqual(SETTINGS.map((setting) => setting.option).sort());
  });

  it('accepts every default it gives', () => {
    for (const setting of SETTINGS) expect(setting.check(setting.default, setting.option), setting.option).toBe(setting.default);
  });

  it('reads every variable from text, and refuses bad text naming the variable', () => {
    // Any text is a file path for `output` and `junit`.
    for (const setting of SETTINGS.filter((s) => s.variable && s.fromText && s.option !== 'output' && s.option !== 'junit')) {
      expect(() => setting.fromText!('not a value', setting.variable!), setting.option).toThrow(InvalidSettingError);
    }
  });
});
