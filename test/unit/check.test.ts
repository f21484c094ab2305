import { describe, expect, it } from 'vitest';
import { checkExitCode, checkMirror } from '../../src/check/findings.js';
import type { Diagnostic, Plan } from '../../src/plan/types.js';
import type { MirrorReport } from '../../src/status/model.js';
import { issueTitle, mirrorMarkdown } from '../../src/render/check.js';
import { DEFAULT_DOCS_URL, docsBase } from '../../src/render/docs-url.js';
import { HOMEPAGE, VERSION } from '../../src/cli/version.js';

const report = (over: Partial<MirrorReport> = {}): MirrorReport =>
  ({
    name: 'app',
    source: 'prod',
    destination: 'staging',
    mode: 'async',
    status: { name: 'Following', reason: 'streaming' },
    worker: { lease_held: true, host: 'h', pid: 1, since: null, heartbeat_at: null, heartbeat_age_ms: 100 },
    apply_lock: null,
    slot: {
      name: 'mirrors_app',
      exists: true,
      active: true,
      active_pid: 5,
      confirmed_flush_lsn: '0/1',
      restart_lsn: '0/1',
      wal_status: 'reserved',
      retained_bytes: '1024',
      current_lsn: '0/2',
    },
    ...over,
  }) as MirrorReport;

const plan = (diagnostics: Diagnostic[] = [], actions: Partial<Plan['actions'][number]>[] = []): Plan =>
  ({ diagnostics, actions }) as unknown as Plan;
const d = (code: string, address: string, severity: Diagnostic['severity'] = 'warning'): Diagnostic => ({
  code,
  severity,
  address,
  message: `${code} message`,
  hint: `${code} hint`,
});
const limits = { maxSlotWalKeepMb: 1024 };
const kinds = (r: ReturnType<typeof checkMirror>) => r.findings.map((f) => f.kind);
const check = (p: Plan, r: MirrorReport, paused = false) =>
  checkMirror('app', p, r, limits, { pausedInConfig: paused });

describe('mirrors check: what a scheduled job looks at', () => {
  it('a Following mirror with nothing planned is clean: exit 0', () => {
    const r = check(plan(), report());
    expect(r).toMatchObject({ state: 'clean', findings: [] });
    expect(checkExitCode([r])).toBe(0);
  });

  it('config drift: the plan has actions of the mirror (not of another one)', () => {
    const r = check(
      plan(
        [],
        [
          { op: 'update', address: 'mirror.app', reason: 'max_batch_size changed' },
          { op: 'create', address: 'mirror.apple', reason: 'new mirror' },
        ],
      ),
      report(),
    );
    expect(kinds(r)).toEqual(['config_drift']);
    expect(r.findings[0].message).toBe('the plan has 1 change: update mirror.app (max_batch_size changed)');
    expect(checkExitCode([r])).toBe(2);
  });

  it('schema drift, a missing guard, data verify found different, and plan errors of its peers', () => {
    const r = check(
      plan([
        d('MR150', 'mirror.app.table.public.t'),
        d('MR159', 'mirror.app.table.public.t'),
        d('MR165', 'mirror.app.table.public.t'),
        d('MR101', 'peer.prod', 'error'),
        d('MR105', 'peer.prod'),
        d('MR150', 'mirror.other.table.public.t'),
      ]),
      report(),
    );
    expect(kinds(r)).toEqual(['schema_drift', 'guard', 'data_drift', 'plan_error']);
  });

  it('lag over the threshold, a status other than Following, no worker', () => {
    expect(
      kinds(
        check(
          plan(),
          report({ status: { name: 'Degraded', reason: 'behind', lag_ms: 12_000, lag_threshold_ms: 5_000 } }),
        ),
      ),
    ).toEqual(['lag']);
    expect(
      check(plan(), report({ status: { name: 'Degraded', reason: 'behind', lag_ms: 12_000, lag_threshold_ms: 5_000 } }))
        .findings[0].message,
    ).toBe('lag 12s is over lag_threshold 5s');
    const failed = check(
      plan(),
      report({
        status: { name: 'Failed', reason: 'drift', error: 'MR150' },
        worker: { lease_held: false, host: null, pid: null, since: null, heartbeat_at: null, heartbeat_age_ms: null },
      }),
    );
    expect(kinds(failed)).toEqual(['status', 'worker']);
  });

  it('a mirror paused in mirrors.yaml is clean while Paused; paused behind the config’s back it is not', () => {
    const paused = report({ status: { name: 'Paused', reason: 'paused: true' } });
    expect(check(plan(), paused, true).state).toBe('clean');
    expect(kinds(check(plan(), paused, false))).toEqual(['status']);
  });

  it('a slot with wal_status unreserved or lost, or keeping 80% of max_slot_wal_keep_size', () => {
    const slot = (over: Partial<NonNullable<MirrorReport['slot']>>) => report({ slot: { ...report().slot!, ...over } });
    expect(kinds(check(plan(), slot({ wal_status: 'unreserved' })))).toEqual(['slot']);
    expect(check(plan(), slot({ wal_status: 'lost' })).findings[0].message).toMatch(/lost the WAL/);
    const near = check(plan(), slot({ retained_bytes: String(900 * 1024 * 1024) }));
    expect(kinds(near)).toEqual(['wal_retention']);
    expect(near.findings[0].message).toMatch(/88% of max_slot_wal_keep_size/);
    expect(kinds(check(plan(), slot({ retained_bytes: String(700 * 1024 * 1024) })))).toEqual([]);
    // Unlimited: nothing to be near (the plan's MR105 warns about the setting itself).
    expect(
      checkMirror(
        'app',
        plan(),
        slot({ retained_bytes: String(900 * 1024 * 1024) }),
        { maxSlotWalKeepMb: -1 },
        { pausedInConfig: false },
      ).findings,
    ).toEqual([]);
  });

  it('while an apply holds the mirror’s lock: "apply in progress", nothing reported as drift, exit 0', () => {
    const r = check(
      plan([d('MR150', 'mirror.app.table.public.t')], [{ op: 'update', address: 'mirror.app', reason: 'x' }]),
      report({
        status: { name: 'Bootstrapping', reason: 'copying', bytes_done: '1', bytes_total: '2' },
        apply_lock: { held: true, host: 'ci', pid: 42, command: 'mirrors apply', since: '2026-12-02T10:00:00Z' },
      }),
    );
    expect(r).toMatchObject({ state: 'apply_in_progress', findings: [], apply: { pid: 42, host: 'ci' } });
    expect(checkExitCode([r])).toBe(0);
    expect(mirrorMarkdown(r, 'https://d/', 'now')).toContain(
      '`mirrors apply` pid 42 on ci since 2026-12-02T10:00:00Z holds the mirror',
    );
  });

  it('the issue body: marker first, findings with absolute documentation links', () => {
    const r = check(plan([d('MR159', 'mirror.app.table.public.t')]), report());
    const body = mirrorMarkdown(r, 'https://docs.example/v1/', '2026-12-02T00:00:00Z');
    expect(body.split('\n')[0]).toBe('<!-- mirrors:check mirror=app -->');
    expect(body).toContain(
      '| [MR159](https://docs.example/v1/diagnostics.md#mr159) read-only guard | MR159 message | `mirror.app.table.public.t` | MR159 hint |',
    );
    expect(body).not.toMatch(/\]\(docs\//);
    expect(issueTitle(r)).toBe('mirrors: app needs a look (read-only guard)');
  });
});

describe('documentation links in markdown', () => {
  it('are absolute: --docs-url, else MIRRORS_DOCS_URL, else this version in the project repository', () => {
    expect(docsBase('https://a.example/docs')).toBe('https://a.example/docs/');
    expect(docsBase(undefined, { MIRRORS_DOCS_URL: 'https://b.example/' })).toBe('https://b.example/');
    expect(docsBase('https://a.example/', { MIRRORS_DOCS_URL: 'https://b.example/' })).toBe('https://a.example/');
    expect(docsBase(undefined, {})).toBe(DEFAULT_DOCS_URL);
    expect(DEFAULT_DOCS_URL).toBe(`${HOMEPAGE}/blob/v${VERSION}/docs/`);
    expect(DEFAULT_DOCS_URL).toMatch(/^https:\/\//);
  });
});
