import { describe, expect, test } from 'vitest';
import { parseDuration } from '../../src/config/duration.js';
import { interpolate } from '../../src/config/interpolate.js';
import { databaseIdentity, parsePeerUrl } from '../../src/config/peer.js';
import { didYouMean } from '../../src/config/suggest.js';
import { canonicalJson } from '../../src/util/canonical.js';

describe('durations', () => {
  test.each([
    ['100ms', 100],
    ['5s', 5000],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['1m30s', 90_000],
    ['1h2m3s4ms', 3_723_004],
  ])('%s is %d ms', (text, ms) => {
    expect(parseDuration(text)).toEqual({ ok: true, ms });
  });

  test.each(['', '5', 's', '5 s', '1.5s', '-1s', '5sec', '30s1m', '5s5s', '0s', '25h'])('`%s` is refused', (text) => {
    expect(parseDuration(text).ok).toBe(false);
  });
});

describe('interpolation', () => {
  const env = { A: 'alpha', EMPTY: '' };

  test('replaces ${env:NAME} anywhere in the string, including an empty value', () => {
    expect(interpolate('x-${env:A}-${env:EMPTY}-y', env)).toEqual({ value: 'x-alpha--y', changed: true, issues: [] });
  });

  test('$${ is a literal ${ and is not interpolated', () => {
    expect(interpolate('p$${env:A}', env).value).toBe('p${env:A}');
  });

  test('reports every missing variable and malformed placeholder', () => {
    expect(interpolate('${env:B}${env:C}${A}${env:', env).issues).toEqual([
      { kind: 'missing', name: 'B' },
      { kind: 'missing', name: 'C' },
      { kind: 'malformed', text: '${A}' },
      { kind: 'malformed' },
    ]);
  });

  test('leaves strings without placeholders untouched', () => {
    expect(interpolate('a $ b {c}', env)).toEqual({ value: 'a $ b {c}', changed: false, issues: [] });
  });
});

describe('peer urls', () => {
  test('splits and percent-decodes a full url', () => {
    const r = parsePeerUrl('postgresql://us%40er:p%3Aw%2Fd@[::1]:6000/my%20db?sslmode=verify-full');
    expect(r).toEqual({
      ok: true,
      fields: { host: '::1', port: 6000, database: 'my db', user: 'us@er', password: 'p:w/d', sslmode: 'verify-full' },
    });
  });

  test('an invalid url is refused without echoing it', () => {
    const r = parsePeerUrl('postgres://u:Secret99@ho st:1/d');
    expect(r.ok).toBe(false);
    expect(JSON.stringify(r)).not.toContain('Secret99');
  });

  test.each([
    ['postgres:///db', 'url has no host (Unix-domain sockets are not supported)'],
    ['postgres://u@h1,h2/db', 'url names several hosts; give exactly one'],
    ['postgres://u@h:0/db', 'url port must be between 1 and 65535'],
    ['postgres://u@h/db/x', 'url path must be just the database name'],
    ['postgres://u%zz@h/db', 'url has an invalid percent-encoding (%XX) in its user, password or database'],
    ['postgres://u@h/db?sslmode=allow', 'url sslmode must be one of disable, prefer, require, verify-ca, verify-full'],
  ])('%s is refused', (url, message) => {
    expect(parsePeerUrl(url)).toEqual({ ok: false, message });
  });

  test('loopback names and a trailing dot do not make a different database', () => {
    const id = (host: string, port = 5432) => databaseIdentity({ host, port, database: 'app' });
    expect(id('LOCALHOST')).toBe(id('127.0.0.1'));
    expect(id('::1')).toBe(id('localhost'));
    expect(id('db.example.com.')).toBe(id('DB.example.com'));
    expect(id('localhost', 5433)).not.toBe(id('localhost'));
  });
});

describe('suggestions', () => {
  test('suggests close spellings, including transpositions', () => {
    expect(didYouMean('max_batch_sise', ['max_batch_size', 'mode'])).toBe('max_batch_size');
    expect(didYouMean('soucre', ['source', 'destination'])).toBe('source');
    expect(didYouMean('prd', ['prod', 'staging'])).toBe('prod');
  });

  test('suggests nothing when nothing is close', () => {
    expect(didYouMean('colour', ['version', 'peers', 'mirrors'])).toBeUndefined();
    expect(didYouMean('x', [])).toBeUndefined();
  });
});

test('canonical JSON sorts keys at every level and keeps array order', () => {
  expect(canonicalJson({ b: 1, a: { d: [2, 1], c: null }, u: undefined })).toBe('{"a":{"c":null,"d":[2,1]},"b":1}');
});
