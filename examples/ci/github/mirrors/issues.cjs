// Helper of mirrors-check.yml (examples/ci/github/workflows), run by actions/github-script: one issue per mirror that
// needs a look, found by the hidden marker `mirrors check` writes in its body. Copy to .github/mirrors/. Guide:
// docs/check.md.

const LABEL = 'mirrors-check';

/**
 * For each mirror of a `mirrors check --format json` report: opens its issue, or updates it, while it needs a
 * look; closes it (with a comment) once it is clean; leaves it alone while an apply is in progress.
 */
async function syncIssues({ github, context, report }) {
  const { owner, repo } = context.repo;
  const open = await github.paginate(github.rest.issues.listForRepo, {
    owner,
    repo,
    state: 'open',
    labels: LABEL,
    per_page: 100,
  });
  const done = [];
  for (const m of report.mirrors) {
    const issue = open.find((i) => typeof i.body === 'string' && i.body.includes(m.issue.marker));
    if (m.state === 'attention') {
      if (issue) {
        await github.rest.issues.update({ owner, repo, issue_number: issue.number, title: m.issue.title, body: m.issue.body });
        done.push({ mirror: m.mirror, updated: issue.number });
      } else {
        const created = await github.rest.issues.create({ owner, repo, title: m.issue.title, body: m.issue.body, labels: [LABEL] });
        done.push({ mirror: m.mirror, created: created.data.number });
      }
    } else if (m.state === 'clean' && issue) {
      await github.rest.issues.createComment({
        owner,
        repo,
        issue_number: issue.number,
        body: `${m.issue.marker}\nClean again at ${report.generated_at}: closing.`,
      });
      await github.rest.issues.update({ owner, repo, issue_number: issue.number, state: 'closed', state_reason: 'completed' });
      done.push({ mirror: m.mirror, closed: issue.number });
    }
  }
  return done;
}

module.exports = { syncIssues, LABEL };
