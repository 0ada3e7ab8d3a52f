// `pgmam schedule install|show|remove`: run `pgmam backup --all` (auto type) on a schedule — a cron
// file, or systemd timers when systemd runs.
import type { Context } from '../context.js';
import { RefusedError, UsageError } from '../errors.js';

export const CRON_FILE = '/etc/cron.d/pgmam';
export const UNIT_DIR = '/etc/systemd/system';
const SERVICE = 'pgmam-backup.service';
const TIMER = 'pgmam-backup.timer';

export function renderCron(spec: string, pgmam: string, configFile: string | undefined, logDir: string): string {
  const config = configFile ? ` --config ${configFile}` : '';
  return [
    '# Written by pgmam schedule install: pgmam backup --all (auto type). Remove with pgmam schedule remove.',
    'SHELL=/bin/sh',
    'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    `${spec} root ${pgmam} backup --all${config} >> ${logDir}/cron.log 2>&1`,
    '',
  ].join('\n');
}

/** systemd's OnCalendar for the common cron specs; anything else is refused rather than guessed. */
export function cronToCalendar(spec: string): string | undefined {
  const f = spec.trim().split(/\s+/);
  if (f.length !== 5 || f.slice(2).some((x) => x !== '*')) return undefined;
  const [min, hour] = f;
  if (/^\d+$/.test(min!) && hour === '*') return `*-*-* *:${min!.padStart(2, '0')}:00`;
  if (/^\d+$/.test(min!) && /^\d+$/.test(hour!)) return `*-*-* ${hour!.padStart(2, '0')}:${min!.padStart(2, '0')}:00`;
  return undefined;
}

export function renderUnits(calendar: string, pgmam: string, configFile: string | undefined): { service: string; timer: string } {
  const config = configFile ? ` --config ${configFile}` : '';
  return {
    service: ['[Unit]', 'Description=pgmam backup --all', '', '[Service]', 'Type=oneshot', `ExecStart=${pgmam} backup --all${config}`, ''].join('\n'),
    timer: ['[Unit]', 'Description=pgmam backup --all on a schedule', '', '[Timer]', `OnCalendar=${calendar}`, 'Persistent=true', '', '[Install]', 'WantedBy=timers.target', ''].join('\n'),
  };
}

export async function runSchedule(ctx: Context, o: { action: string; pgmam: string; configFile: string | undefined; dryRun: boolean }): Promise<void> {
  if (!['install', 'show', 'remove'].includes(o.action)) throw new UsageError(`schedule takes install, show or remove (got "${o.action}")`);
  if (o.action === 'show') {
    const files = ctx.host.systemd ? [`${UNIT_DIR}/${SERVICE}`, `${UNIT_DIR}/${TIMER}`] : [CRON_FILE];
    const texts = await Promise.all(files.map(async (f) => [f, await ctx.fs.readText(f)] as const));
    const present = texts.filter(([, t]) => t !== undefined);
    ctx.io.out(present.length ? present.map(([f, t]) => `# ${f}\n${t}`).join('\n') : 'no pgmam schedule is installed\n');
    return;
  }
  if (ctx.host.uid !== 0) throw new RefusedError(`schedule ${o.action}`, [{ id: 'runs-as-root', reason: 'installing a schedule needs root', hint: 'run it with sudo' }]);
  const logDir = ctx.paths.logFile.replace(/\/[^/]+$/, '');
  if (ctx.host.systemd) {
    const calendar = cronToCalendar(ctx.config.schedule);
    if (!calendar) throw new RefusedError('schedule', [{ id: 'schedule-fits-systemd', reason: `schedule "${ctx.config.schedule}" has no simple systemd OnCalendar equivalent`, hint: 'use "M * * * *" (hourly) or "M H * * *" (daily)' }]);
    const units = renderUnits(calendar, o.pgmam, o.configFile);
    const cmds = o.action === 'install'
      ? [['systemctl', 'daemon-reload'], ['systemctl', 'enable', '--now', TIMER]]
      : [['systemctl', 'disable', '--now', TIMER], ['systemctl', 'daemon-reload']];
    if (o.dryRun) {
      ctx.io.out(o.action === 'install' ? `write ${UNIT_DIR}/${SERVICE}:\n${units.service}\nwrite ${UNIT_DIR}/${TIMER}:\n${units.timer}\n${cmds.map((c) => `$ ${c.join(' ')}`).join('\n')}\n` : `${cmds.map((c) => `$ ${c.join(' ')}`).join('\n')}\nrm ${UNIT_DIR}/${SERVICE} ${UNIT_DIR}/${TIMER}\n`);
      return;
    }
    if (o.action === 'install') {
      await ctx.fs.writeFileAtomic(`${UNIT_DIR}/${SERVICE}`, units.service, { mode: 0o644 });
      await ctx.fs.writeFileAtomic(`${UNIT_DIR}/${TIMER}`, units.timer, { mode: 0o644 });
      for (const c of cmds) await ctx.runner.run({ argv: c, effect: 'write' });
    } else {
      for (const c of cmds.slice(0, 1)) await ctx.runner.run({ argv: c, effect: 'write' }, { check: false });
      await ctx.fs.rm(`${UNIT_DIR}/${SERVICE}`);
      await ctx.fs.rm(`${UNIT_DIR}/${TIMER}`);
      await ctx.runner.run({ argv: cmds[1]!, effect: 'write' });
    }
    ctx.io.out(o.action === 'install' ? `installed ${TIMER} (OnCalendar=${calendar})\n` : `removed ${TIMER}\n`);
    return;
  }
  const text = renderCron(ctx.config.schedule, o.pgmam, o.configFile, logDir);
  if (o.dryRun) {
    ctx.io.out(o.action === 'install' ? `write ${CRON_FILE}:\n${text}` : `rm ${CRON_FILE}\n`);
    return;
  }
  if (o.action === 'install') {
    await ctx.fs.writeFileAtomic(CRON_FILE, text, { mode: 0o644 });
    ctx.io.out(`installed ${CRON_FILE}: ${ctx.config.schedule} pgmam backup --all\n`);
  } else {
    await ctx.fs.rm(CRON_FILE);
    ctx.io.out(`removed ${CRON_FILE}\n`);
  }
}
