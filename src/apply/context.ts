/**
 * What an apply run shares between actions: one admin connection per peer, the exported snapshots of
 * slots created in this run (kept open until the copy that needs them is done), the journal.
 */
import os from 'node:os';
import type pg from 'pg';
import type { Config, Peer } from '../config/types.js';
import { connectPeer } from '../db/connect.js';
import { MirrorsError } from '../errors.js';
import type { Action, Plan } from '../plan/types.js';
import { journal } from '../catalog/sql.js';
import type { ExportedSnapshot } from './slot.js';
import type { Reporter } from './events.js';

export class ApplyContext {
  private clients = new Map<string, Promise<pg.Client>>();
  readonly exported = new Map<string, ExportedSnapshot>();
  readonly host = os.hostname();
  readonly pid = process.pid;

  constructor(
    readonly config: Config,
    readonly plan: Plan,
    readonly report: Reporter,
    readonly command: string,
  ) {}

  peer(name: string): Peer {
    const p = this.config.peers[name];
    if (!p) throw new MirrorsError('APPLY_FAILED', `peer ${name} is not declared in the configuration`, { hint: 'keep peers declared while a plan uses them' });
    return p;
  }

  db(peer: string): Promise<pg.Client> {
    let c = this.clients.get(peer);
    if (!c) {
      c = connectPeer(this.peer(peer), { applicationName: 'mirrors apply' });
      this.clients.set(peer, c);
      c.catch(() => this.clients.delete(peer));
    }
    return c;
  }

  /** The destination peer holding a mirror's catalog rows. */
  destinationOf(mirror: string): string {
    const m = this.config.mirrors[mirror];
    if (m) return m.destination;
    const a = this.plan.actions.find((x) => x.mirror === mirror && x.kind === 'mirror');
    if (a) return a.peer;
    throw new MirrorsError('APPLY_FAILED', `cannot tell the destination of mirror ${mirror}`);
  }

  sourceOf(mirror: string): string {
    const m = this.config.mirrors[mirror];
    if (m) return m.source;
    const a = this.plan.actions.find((x) => x.mirror === mirror && (x.kind === 'slot' || x.kind === 'publication'));
    if (a) return a.peer;
    throw new MirrorsError('APPLY_FAILED', `cannot tell the source of mirror ${mirror}`);
  }

  async journal(action: Action, outcome: 'done' | 'failed', error?: Record<string, unknown>) {
    const peer = action.mirror ? this.destinationOf(action.mirror) : action.peer;
    const db = await this.db(peer);
    const ok = (await db.query(`SELECT to_regclass('mirrors.journal') IS NOT NULL AS ok`)).rows[0].ok;
    if (!ok) return; // a failed catalog creation has nowhere to be written
    await journal(db, {
      mirror: action.mirror ?? null,
      actionId: action.id,
      address: action.address,
      kind: action.kind,
      op: action.op,
      outcome,
      error,
      host: this.host,
      pid: this.pid,
      command: this.command,
    });
  }

  async close() {
    for (const s of this.exported.values()) await s.close();
    this.exported.clear();
    for (const c of this.clients.values()) await c.then((x) => x.end()).catch(() => {});
    this.clients.clear();
  }
}
