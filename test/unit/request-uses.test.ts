import { describe, expect, it } from 'vitest';
import { redactUrl } from '../../src/seen/request-uses';

describe('redactUrl', () => {
  it('removes credentials and replaces query values, keeping keys', () => {
    expect(redactUrl('http://user:pw@example.test:8080', '/report?id=42&token=abc')).toBe('http://example.test:8080/report?id=…&token=…');
  });
  it('leaves a URL without secrets as it is', () => {
    expect(redactUrl('https://example.test', '/a/b')).toBe('https://example.test/a/b');
  });
});
