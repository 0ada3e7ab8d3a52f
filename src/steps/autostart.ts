// Clusters pgmam makes start at boot: start.conf `auto` (Debian's init script and systemd generator
// start those), and the systemd unit enabled where systemd runs. Branches may opt out (--no-autostart).
import type { Context } from '../context.js';
import * as pg from '../pg/commands.js';
import type { Step } from '../plan/types.js';

export function autostartStep(id: pg.ClusterId, on: boolean, systemd: boolean): Step {
  const file = `${pg.confDirOf(id)}/start.conf`;
  const unit = pg.unitName(id);
  return {
    id: 'set-autostart',
    title: on ? `start ${pg.clusterLabel(id)} at boot` : `do not start ${pg.clusterLabel(id)} at boot (--no-autostart)`,
    effect: 'write',
    run: async (ctx: Context) => {
      const st = await ctx.fs.stat(file);
      await ctx.fs.writeFileAtomic(file, `${on ? 'auto' : 'manual'}\n`, { mode: 0o644, owner: st ? { uid: st.uid, gid: st.gid } : undefined });
      if (systemd) await ctx.runner.run({ argv: ['systemctl', on ? 'enable' : 'disable', unit], effect: 'write' });
    },
    show: [`write ${file}: ${on ? 'auto' : 'manual'}`, ...(systemd ? [`$ systemctl ${on ? 'enable' : 'disable'} ${unit}`] : [])],
  };
}
