/**
 * `npm run demo`: two throw-away Postgres clusters, a small shop schema with data, a mirrors.yaml, then
 * the real CLI: validate, plan, apply, plan again (no changes). Checks that both sides are equal and
 * cleans up. Everything the user sees is the CLI's own output.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCluster, type Cluster } from '../devtools/cluster.js';

const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));

const SCHEMA = `
CREATE TYPE order_status AS ENUM ('new', 'paid', 'shipped');
CREATE TABLE customers (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text UNIQUE NOT NULL, name text, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers(id), status order_status NOT NULL DEFAULT 'new',
                     total numeric(12,2) NOT NULL, items jsonb, internal_notes text, placed_at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE INDEX orders_customer_idx ON orders (customer_id);
INSERT INTO customers (email, name) SELECT 'user' || g || '@example.com', 'User ' || g FROM generate_series(1, 2000) g;
INSERT INTO orders (customer_id, status, total, items, internal_notes)
  SELECT 1 + (g % 2000), (ARRAY['new','paid','shipped']::order_status[])[1 + g % 3], round((random() * 500)::numeric, 2),
         jsonb_build_object('sku', 'SKU-' || (g % 97), 'qty', 1 + g % 5), 'note ' || g
    FROM generate_series(1, 50000) g;
ANALYZE;
`;

function step(title: string) {
  process.stdout.write(`\n\x1b[1m== ${title}\x1b[0m\n`);
}

function cli(args: string[], cwd: string, env: Record<string, string>, allowed: number[] = [0]): number {
  process.stdout.write(`$ mirrors ${args.join(' ')}\n`);
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, ...env }, stdio: 'inherit' });
  const code = r.status ?? 1;
  if (!allowed.includes(code)) throw new Error(`mirrors ${args.join(' ')} exited ${code}`);
  return code;
}

async function fingerprint(c: Cluster, sql: string): Promise<string> {
  return (
    await c.query<{ h: string }>(
      `SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) AS h FROM (${sql}) x`,
      [],
      'shop',
    )
  )[0].h;
}

async function main() {
  const t0 = Date.now();
  step('starting a source and a destination PostgreSQL');
  const [source, destination] = await Promise.all([
    startCluster({ name: 'source', settings: { max_slot_wal_keep_size: '1GB' } }),
    startCluster({ name: 'destination' }),
  ]);
  const dir = mkdtempSync(join(tmpdir(), 'mirrors-demo-'));
  try {
    console.log(`source on 127.0.0.1:${source.port}, destination on 127.0.0.1:${destination.port}`);
    await source.createDatabase('shop');
    await destination.createDatabase('shop');
    await source.query(SCHEMA, [], 'shop');
    console.log('loaded 2,000 customers and 50,000 orders into the source');

    writeFileSync(
      join(dir, 'mirrors.yaml'),
      `# yaml-language-server: $schema=${fileURLToPath(new URL('../../schemas/mirrors.schema.json', import.meta.url))}
version: 1
peers:
  prod:    { host: 127.0.0.1, port: ${source.port}, database: shop, user: postgres, password: "\${env:DEMO_PASSWORD}" }
  staging: { host: 127.0.0.1, port: ${destination.port}, database: shop, user: postgres, password: "\${env:DEMO_PASSWORD}" }
mirrors:
  shop_to_staging:
    source: prod
    destination: staging
    snapshot_num_rows_per_partition: 10000
    tables:
      - source_table: public.customers
      - { source_table: public.orders, partition_key: id, exclude_columns: [internal_notes] }
`,
    );
    const env = { DEMO_PASSWORD: 'postgres' };
    step('mirrors.yaml');
    console.log(`written to ${join(dir, 'mirrors.yaml')}`);
    step('validate');
    cli(['validate'], dir, env);
    step('plan');
    cli(['plan'], dir, env);
    step('apply');
    cli(['apply', '--auto-approve'], dir, env);
    step('plan again: nothing left to do');
    cli(['plan', '--detailed-exitcode'], dir, env);

    step('run: stream changes while the source keeps writing');
    console.log('$ mirrors run   (in the background; its logs go to run.log)');
    const logFile = join(dir, 'run.log');
    const worker = spawn(process.execPath, [CLI, 'run'], {
      cwd: dir,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', (await import('node:fs')).openSync(logFile, 'w')],
    });
    const exited = new Promise<number>((r) => worker.once('exit', (code) => r(code ?? 1)));
    let writing = true;
    let writes = 0;
    const writer = (async () => {
      while (writing) {
        await source.query(
          `WITH c AS (INSERT INTO customers (email, name) VALUES ('new' || clock_timestamp() || '@example.com', 'New') RETURNING id)
           INSERT INTO orders (customer_id, total, items, internal_notes) SELECT id, 42.50, '{"sku": "SKU-1"}', 'secret' FROM c;
           UPDATE orders SET status = 'paid' WHERE id = (SELECT max(id) - 10 FROM orders);
           DELETE FROM orders WHERE id = (SELECT min(id) FROM orders WHERE status = 'shipped');`,
          [],
          'shop',
        );
        writes++;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 2000));
      console.log(`\n(${writes} write transactions so far)`);
      cli(['status'], dir, env, [0, 2]);
    }
    writing = false;
    await writer;

    step('a write to the destination is refused');
    try {
      await destination.query(`UPDATE orders SET total = 0 WHERE id = 1`, [], 'shop');
      throw new Error('the destination accepted a write');
    } catch (err) {
      if ((err as Error).message.includes('accepted')) throw err;
      console.log(`staging> UPDATE orders SET total = 0 WHERE id = 1;\nERROR:  ${(err as Error).message}`);
    }

    step('waiting until every source write is applied (mirrors.wait_for_lsn)');
    const [{ lsn }] = await source.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn', [], 'shop');
    await destination.query(`SELECT mirrors.wait_for_lsn('shop_to_staging', $1::pg_lsn, '30 seconds')`, [lsn], 'shop');
    console.log(`applied up to ${lsn}`);
    cli(['status'], dir, env, [0, 2]);
    worker.kill('SIGTERM');
    console.log(`mirrors run stopped on SIGTERM, exit code ${await exited}`);

    step('comparing source and destination');
    const checks: [string, string][] = [
      ['customers', 'SELECT id, email, name, created_at FROM customers'],
      ['orders', 'SELECT id, customer_id, status, total, items, placed_at FROM orders'],
    ];
    for (const [name, sql] of checks) {
      const [a, b] = [await fingerprint(source, sql), await fingerprint(destination, sql)];
      if (a !== b) throw new Error(`${name} differs between source and destination`);
      console.log(`${name}: identical (md5 ${a})`);
    }
    const notes = await destination.query(
      `SELECT count(*)::int AS n FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'internal_notes'`,
      [],
      'shop',
    );
    console.log(
      `orders.internal_notes on the destination: ${notes[0].n ? 'present (unexpected!)' : 'excluded, as configured'}`,
    );
    step(`done in ${((Date.now() - t0) / 1000).toFixed(1)}s; cleaning up`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await Promise.all([source.stop(), destination.stop()]);
  }
}

main().catch((err) => {
  console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
