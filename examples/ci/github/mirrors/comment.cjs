// Helpers of the mirrors workflows (examples/ci/github/workflows), run by actions/github-script. Copy this folder to
// .github/mirrors/ next to the workflows. Guide: docs/ci.md.

/** The hidden marker `mirrors plan --format markdown` (and `mirrors show`) starts the comment with. */
function markerOf(body) {
  const m = /^<!-- mirrors:plan [^>]*-->/.exec(body);
  if (!m) throw new Error('the plan markdown does not start with its <!-- mirrors:plan ... --> marker');
  return m[0];
}

/**
 * The pull request's plan comment, updated in place: the comment carrying the same marker (one per project and
 * config file) is edited, else one is created.
 */
async function upsertComment({ github, context, body }) {
  const marker = markerOf(body);
  const { owner, repo } = context.repo;
  const issue_number = context.issue.number;
  const comments = await github.paginate(github.rest.issues.listComments, { owner, repo, issue_number, per_page: 100 });
  const mine = comments.find((c) => typeof c.body === 'string' && c.body.startsWith(marker));
  if (mine) {
    await github.rest.issues.updateComment({ owner, repo, comment_id: mine.id, body });
    return { updated: mine.id };
  }
  const created = await github.rest.issues.createComment({ owner, repo, issue_number, body });
  return { created: created.data.id };
}

/**
 * The plan reviewed on the pull request this push merged: the artifact `mirrors-plan-<head sha>` of the last
 * successful run of the plan workflow on the pull request's last commit.
 */
async function reviewedPlan({ github, context, workflow }) {
  const { owner, repo } = context.repo;
  const prs = (await github.rest.repos.listPullRequestsAssociatedWithCommit({ owner, repo, commit_sha: context.sha })).data;
  const pr = prs.find((p) => p.merged_at);
  if (!pr)
    throw new Error(
      `commit ${context.sha} is not the merge of a pull request: only a plan reviewed on a pull request is applied (open one)`,
    );
  const head = pr.head.sha;
  const runs = (
    await github.rest.actions.listWorkflowRuns({ owner, repo, workflow_id: workflow, head_sha: head, status: 'success' })
  ).data.workflow_runs;
  if (!runs.length)
    throw new Error(
      `no successful ${workflow} run for ${head}, the last commit of #${pr.number}: its plan was never reviewed; re-run the plan workflow on the pull request`,
    );
  const run = runs.sort((a, b) => (a.run_number < b.run_number ? 1 : -1))[0];
  return { runId: run.id, artifact: `mirrors-plan-${head}`, pullRequest: pr.number };
}

module.exports = { markerOf, upsertComment, reviewedPlan };
