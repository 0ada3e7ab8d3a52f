// The hand-over point (rule 1): a cluster a command creates or restores stays closed to users —
// pg_hba.conf admits only `local all postgres peer`, pgmam's own steps — until one step hands it over
// by putting back the real rules and reloading. Before it, a failed or interrupted run may remove
// what it made; from it on, recovery only goes forward or preserves, never deletes.
import type { Context } from '../context.js';
import { readClusters } from '../host/facts.js';
import * as pg from '../pg/commands.js';
import type { Step } from '../plan/types.js';

export const HAND_OVER = 'hand-over';
export const CLOSED_HBA = '# Written by pgmam: closed to users until pgmam hands this cluster over (pgmam list shows why).\nlocal all postgres peer\n';

/** pgmam's root-owned copy of the rules a closed cluster gets back at hand-over. */
export const savedHbaPath = (stateDir: string, name: string) => `${stateDir}/handover/${name}.pg_hba.conf`;
const hbaOf = (id: pg.ClusterId) => `${pg.confDirOf(id)}/pg_hba.conf`;

async function reloadIfRunning(ctx: Context, id: pg.ClusterId, systemd: boolean): Promise<void> {
  const c = (await readClusters(ctx.runner)).find((x) => x.version === id.version && x.name === id.name);
  if (c?.running) await ctx.runner.run(pg.controlCluster(id, 'reload', systemd));
}

/** Close the cluster to users: its rules saved under pgmam's state, pg_hba.conf replaced by the closed one. Idempotent. */
export function closeToUsersStep(id: pg.ClusterId, stateDir: string, systemd: boolean): Step {
  const hba = hbaOf(id);
  const saved = savedHbaPath(stateDir, id.name);
  return {
    id: 'close-to-users',
    title: `close ${pg.clusterLabel(id)} to users until hand-over (pg_hba.conf: local postgres only)`,
    effect: 'write',
    run: async (ctx) => {
      const current = await ctx.fs.readText(hba);
      if (current === undefined) throw new Error(`${hba} is missing`);
      // A re-run finds it closed already: the saved rules are the real ones, keep them.
      if (current !== CLOSED_HBA) {
        await ctx.fs.mkdirp(`${stateDir}/handover`, { mode: 0o700 });
        await ctx.fs.writeFileAtomic(saved, current, { mode: 0o600 });
      }
      const st = await ctx.fs.stat(hba);
      await ctx.fs.writeFileAtomic(hba, CLOSED_HBA, { mode: st ? st.mode & 0o777 : 0o640, owner: st ? { uid: st.uid, gid: st.gid } : undefined });
      await reloadIfRunning(ctx, id, systemd);
    },
    show: [`copy ${hba} to ${saved} (0600 root)`, `write ${hba}: local all postgres peer`, '(reload if running)'],
  };
}

/** Open the cluster to users: the saved rules back, reload. Idempotent; from here on nothing the run made is removed. */
export function handOverStep(id: pg.ClusterId, stateDir: string, systemd: boolean): Step {
  const hba = hbaOf(id);
  const saved = savedHbaPath(stateDir, id.name);
  return {
    id: HAND_OVER,
    title: `hand ${pg.clusterLabel(id)} over to users (its pg_hba.conf rules back)`,
    effect: 'write',
    // Users may be writing as soon as this begins: a failure here is finished forward, never undone.
    keepOnFailure: true,
    run: async (ctx) => {
      const rules = await ctx.fs.readText(saved);
      if (rules === undefined) {
        if ((await ctx.fs.readText(hba)) === CLOSED_HBA) throw new Error(`${hba} is closed and pgmam's copy of its rules (${saved}) is missing: write the rules by hand and reload`);
        return; // handed over already
      }
      const st = await ctx.fs.stat(hba);
      await ctx.fs.writeFileAtomic(hba, rules, { mode: st ? st.mode & 0o777 : 0o640, owner: st ? { uid: st.uid, gid: st.gid } : undefined });
      await reloadIfRunning(ctx, id, systemd);
      await ctx.fs.rm(saved);
    },
    show: [`write ${saved} back to ${hba}`, `$ ${systemd ? `systemctl reload ${pg.unitName(id)}` : `pg_ctlcluster ${id.version} ${id.name} reload`}`, `rm ${saved}`],
  };
}

/** Whether an interrupted run had reached the hand-over (it may have begun: users may be writing). */
export const handedOver = (j: { steps: readonly string[]; at: number }) => {
  const i = j.steps.indexOf(HAND_OVER);
  return i >= 0 && j.at >= i;
};
