import { describe, expect, it } from 'vitest';
import { redactUrl, useUrl } from '../../src/seen/request-uses';

describe('redactUrl', () => {
  it('removes credentials and replaces query values, keeping keys', () => {
    expect(redactUrl('http://user:pw@example.test:8080', '/report?id=42&token=abc')).toBe('http://example.test:8080/report?id=…&token=…');
  });
  it('leaves a URL without secrets as it is', () => {
    expect(redactUrl('https://example.test', '/a/b')).toBe('https://example.test/a/b');
  });
});

describe('useUrl: the URL of a remembered use, built and redacted only when reported', () => {
  const base = { method: 'GET', caller: undefined, at: 0 };
  it("from http's protocol, Host header and path", () => {
    expect(useUrl({ ...base, protocol: 'http:', host: '127.0.0.1:8080', path: '/export?token=abc' })).toBe('http://127.0.0.1:8080/export?token=…');
  });
  it("from undici's origin (a string or a URL) and path", () => {
    expect(useUrl({ ...base, origin: 'https://user:pw@api.test', path: '/v1/items' })).toBe('https://api.test/v1/items');
    expect(useUrl({ ...base, origin: new URL('http://api.test:81'), path: '/' })).toBe('http://api.test:81/');
  });
});
