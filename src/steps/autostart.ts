// Clusters pgmam makes start at boot: start.conf `auto` (Debian's init script and systemd generator
// start those), and the systemd unit enabled where systemd runs. Branches may opt out (--no-autostart).
import type { Context } from '../context.js';
import * as pg from '../pg/commands.js';
import type { Step } from '../plan/types.js';

export function autostartStep(id: pg.ClusterId, on: boolean, systemd: boolean): Step {
  const mode = on ? 'auto' : 'manual';
  return {
    id: 'set-autostart',
    title: on ? `start ${pg.clusterLabel(id)} at boot` : `do not start ${pg.clusterLabel(id)} at boot (--no-autostart)`,
    effect: 'write',
    run: (ctx: Context) => setStartAtBoot(ctx, id, mode, systemd),
    show: startAtBootShown(id, mode, systemd),
  };
}

/**
 * start.conf as postgresql-common reads it (`auto` starts at boot; `manual` and `disabled` do not,
 * `disabled` also refuses pg_ctlcluster start), and the systemd unit enabled or not to match.
 */
export async function setStartAtBoot(ctx: Pick<Context, 'fs' | 'runner'>, id: pg.ClusterId, mode: 'auto' | 'manual' | 'disabled', systemd: boolean, check = true): Promise<void> {
  const file = `${pg.confDirOf(id)}/start.conf`;
  const st = await ctx.fs.stat(file);
  await ctx.fs.writeFileAtomic(file, `${mode}\n`, { mode: 0o644, owner: st ? { uid: st.uid, gid: st.gid } : undefined });
  if (systemd) await ctx.runner.run({ argv: ['systemctl', mode === 'auto' ? 'enable' : 'disable', pg.unitName(id)], effect: 'write' }, { check });
}

export const startAtBootShown = (id: pg.ClusterId, mode: 'auto' | 'manual' | 'disabled', systemd: boolean) => [
  `write ${pg.confDirOf(id)}/start.conf: ${mode}`,
  ...(systemd ? [`$ systemctl ${mode === 'auto' ? 'enable' : 'disable'} ${pg.unitName(id)}`] : []),
];
