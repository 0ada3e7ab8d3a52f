// `pgmam schedule install|show|remove`: run `pgmam backup --all` (auto type) on a schedule — a cron
// file, or systemd timers when systemd runs — and `pgmam repo backup-clients --all` beside it (the
// backups a repository host takes of other hosts' apps; nothing on a host that serves none); and
// `pgmam drill --all` on drill-schedule (weekly by default).
import { type Journal } from '../../state/journal.js';
import { z } from 'zod';
import type { Context } from '../../context.js';
import { UsageError } from '../../errors.js';
import { runsAsRoot } from '../../guards/host.js';
import { runFlagsSchema, type CommandModule, type PlanBody, type PlanEnv, type Recovery } from '../../plan/command.js';
import { fail, pass, type Guard, type Step } from '../../plan/types.js';
import { logrotateStep, removeLogrotateSteps } from '../../steps/logrotate.js';

export const CRON_FILE = '/etc/cron.d/pgmam';
export const UNIT_DIR = '/etc/systemd/system';
const SERVICE = 'pgmam-backup.service';
const TIMER = 'pgmam-backup.timer';
const DRILL_SERVICE = 'pgmam-drill.service';
const DRILL_TIMER = 'pgmam-drill.timer';

export function renderCron(spec: string, pgmam: string, configFile: string | undefined, logDir: string, drillSpec = ''): string {
  const config = configFile ? ` --config ${configFile}` : '';
  return [
    `# Written by pgmam schedule install: pgmam backup --all (auto type)${drillSpec ? ' and pgmam drill --all' : ''}. Remove with pgmam schedule remove.`,
    'SHELL=/bin/sh',
    'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    // Then the backups a repository host takes of the apps that archive into it (nothing where it serves none).
    `${spec} root ${pgmam} backup --all${config} >> ${logDir}/cron.log 2>&1; ${pgmam} repo backup-clients --all${config} >> ${logDir}/cron.log 2>&1`,
    ...(drillSpec ? [`${drillSpec} root ${pgmam} drill --all -q${config} >> ${logDir}/cron.log 2>&1`] : []),
    '',
  ].join('\n');
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

/** systemd's OnCalendar for the common cron specs (hourly, daily, weekly); anything else is refused rather than guessed. */
export function cronToCalendar(spec: string): string | undefined {
  const f = spec.trim().split(/\s+/);
  if (f.length !== 5 || f[2] !== '*' || f[3] !== '*') return undefined;
  const [min, hour, , , dow] = f;
  const day = dow === '*' ? '' : /^[0-7]$/.test(dow!) ? `${DAYS[Number(dow)]} ` : undefined;
  if (day === undefined || !/^\d+$/.test(min!)) return undefined;
  if (hour === '*') return day ? undefined : `*-*-* *:${min!.padStart(2, '0')}:00`;
  if (/^\d+$/.test(hour!)) return `${day}*-*-* ${hour!.padStart(2, '0')}:${min!.padStart(2, '0')}:00`;
  return undefined;
}

export function renderUnits(calendar: string, pgmam: string, configFile: string | undefined): { service: string; timer: string } {
  const config = configFile ? ` --config ${configFile}` : '';
  return {
    // backup-clients first and never failing the unit ('-'): the unit's result is backup --all's.
    service: ['[Unit]', 'Description=pgmam backup --all', '', '[Service]', 'Type=oneshot', `ExecStart=-${pgmam} repo backup-clients --all${config}`, `ExecStart=${pgmam} backup --all${config}`, ''].join('\n'),
    timer: ['[Unit]', 'Description=pgmam backup --all on a schedule', '', '[Timer]', `OnCalendar=${calendar}`, 'Persistent=true', '', '[Install]', 'WantedBy=timers.target', ''].join('\n'),
  };
}

/** The weekly restore drills (drill-schedule), as a unit pair of their own. */
export function renderDrillUnits(calendar: string, pgmam: string, configFile: string | undefined): { service: string; timer: string } {
  const config = configFile ? ` --config ${configFile}` : '';
  return {
    service: ['[Unit]', 'Description=pgmam drill --all', '', '[Service]', 'Type=oneshot', `ExecStart=${pgmam} drill --all -q${config}`, ''].join('\n'),
    timer: ['[Unit]', 'Description=pgmam drill --all on a schedule', '', '[Timer]', `OnCalendar=${calendar}`, 'Persistent=true', '', '[Install]', 'WantedBy=timers.target', ''].join('\n'),
  };
}

export const scheduleOptionsSchema = runFlagsSchema.extend({ action: z.string(), pgmam: z.string() });
export type ScheduleOptions = z.infer<typeof scheduleOptionsSchema>;

export interface ScheduleFacts {
  uid: number;
  systemd: boolean;
  /** The schedule's files as they are now (undefined: absent). */
  files: Array<[string, string | undefined]>;
  /** The configuration file this run read (--config or PGMAM_CONFIG): the scheduled run reads the same. */
  configFile: string | undefined;
}

const scheduleFiles = (systemd: boolean) => (systemd ? [`${UNIT_DIR}/${SERVICE}`, `${UNIT_DIR}/${TIMER}`, `${UNIT_DIR}/${DRILL_SERVICE}`, `${UNIT_DIR}/${DRILL_TIMER}`] : [CRON_FILE]);

export async function gatherSchedule(ctx: Context): Promise<ScheduleFacts> {
  const files = await Promise.all(scheduleFiles(ctx.host.systemd).map(async (f) => [f, await ctx.fs.readText(f)] as [string, string | undefined]));
  return { uid: ctx.host.uid, systemd: ctx.host.systemd, files, configFile: ctx.configFile };
}

export function scheduleGuards(f: ScheduleFacts, o: ScheduleOptions, env: Pick<PlanEnv, 'config'>): Guard[] {
  if (o.action === 'show') return [];
  return [
    runsAsRoot(f.uid, 'install a schedule'),
    ...(f.systemd
      ? [
          { id: 'schedule-fits-systemd', check: () => (cronToCalendar(env.config.schedule) ? pass : fail(`schedule "${env.config.schedule}" has no simple systemd OnCalendar equivalent`, 'use "M * * * *" (hourly) or "M H * * *" (daily)')) },
          {
            id: 'drill-schedule-fits-systemd',
            check: () =>
              !env.config['drill-schedule'] || cronToCalendar(env.config['drill-schedule']) ? pass : fail(`drill-schedule "${env.config['drill-schedule']}" has no simple systemd OnCalendar equivalent`, 'use "M H * * D" (weekly) or "M H * * *" (daily)'),
          },
        ]
      : []),
  ];
}

const write = (file: string, text: string): Step => ({ id: 'write-schedule', title: `write ${file}`, effect: 'write', run: (c) => c.fs.writeFileAtomic(file, text, { mode: 0o644 }), show: text.trimEnd().split('\n').map((l) => `  | ${l}`) });
const remove = (file: string): Step => ({ id: 'remove-schedule', title: `remove ${file}`, effect: 'destroy', run: (c) => c.fs.rm(file), show: [`rm -f ${file}`] });
const systemctl = (args: string[], check = true): Step => ({ id: 'systemctl', title: `systemctl ${args.join(' ')}`, effect: 'write', run: check ? { argv: ['systemctl', ...args], effect: 'write' } : async (c) => void (await c.runner.run({ argv: ['systemctl', ...args], effect: 'write' }, { check: false })) });

/** The schedule's journal and lock go under this name: it is not a cluster (cluster names start with a letter). */
export const SCHEDULE_JOURNAL = '_schedule';

export const scheduleJournalSchema = z.object({ action: z.enum(['install', 'remove']), pgmam: z.string(), configFile: z.string().nullable(), systemd: z.boolean(), schedule: z.string(), drillSchedule: z.string().default('') });
export type ScheduleJournal = z.infer<typeof scheduleJournalSchema>;

/** Every step writes, removes or asks systemd for a whole state: each can run again. */
function scheduleSteps(d: ScheduleJournal, logFile: string): Step[] {
  // The rotation of the default log directory stays after remove: the package may own that file.
  const logDir = logFile.replace(/\/[^/]+$/, '');
  if (d.systemd) {
    const units = renderUnits(cronToCalendar(d.schedule) ?? '?', d.pgmam, d.configFile ?? undefined);
    const drill = d.drillSchedule ? renderDrillUnits(cronToCalendar(d.drillSchedule) ?? '?', d.pgmam, d.configFile ?? undefined) : undefined;
    // Without drill-schedule, an earlier install's drill timer goes (install writes the whole schedule).
    const drillSteps = drill
      ? [write(`${UNIT_DIR}/${DRILL_SERVICE}`, drill.service), write(`${UNIT_DIR}/${DRILL_TIMER}`, drill.timer)]
      : [systemctl(['disable', '--now', DRILL_TIMER], false), remove(`${UNIT_DIR}/${DRILL_SERVICE}`), remove(`${UNIT_DIR}/${DRILL_TIMER}`)];
    return d.action === 'install'
      ? [write(`${UNIT_DIR}/${SERVICE}`, units.service), write(`${UNIT_DIR}/${TIMER}`, units.timer), ...drillSteps, systemctl(['daemon-reload']), systemctl(['enable', '--now', TIMER]), ...(drill ? [systemctl(['enable', '--now', DRILL_TIMER])] : []), logrotateStep(logDir)]
      : [systemctl(['disable', '--now', TIMER], false), systemctl(['disable', '--now', DRILL_TIMER], false), remove(`${UNIT_DIR}/${SERVICE}`), remove(`${UNIT_DIR}/${TIMER}`), remove(`${UNIT_DIR}/${DRILL_SERVICE}`), remove(`${UNIT_DIR}/${DRILL_TIMER}`), systemctl(['daemon-reload']), ...removeLogrotateSteps(logDir)];
  }
  return d.action === 'install' ? [write(CRON_FILE, renderCron(d.schedule, d.pgmam, d.configFile ?? undefined, logDir, d.drillSchedule)), logrotateStep(logDir)] : [remove(CRON_FILE), ...removeLogrotateSteps(logDir)];
}

export function planSchedule(f: ScheduleFacts, o: ScheduleOptions, env: PlanEnv): PlanBody {
  const target = f.systemd ? TIMER : CRON_FILE;
  if (o.action === 'show') return { target, steps: [], journal: false };
  const data: ScheduleJournal = { action: o.action === 'install' ? 'install' : 'remove', pgmam: o.pgmam, configFile: f.configFile ?? null, systemd: f.systemd, schedule: env.config.schedule, drillSchedule: env.config['drill-schedule'] };
  return { target, steps: scheduleSteps(data, env.paths.logFile), journal: { rerun: `pgmam schedule ${o.action} --yes`, data } };
}

/** An interrupted install or remove is finished: all its steps again. */
export async function recoverSchedule(ctx: Context, j: Journal, d: ScheduleJournal): Promise<Recovery> {
  return { way: 'finished', steps: scheduleSteps(d, ctx.paths.logFile), finished: `the interrupted schedule ${d.action} is finished\n` };
}

async function reportSchedule(ctx: Context, o: ScheduleOptions, f: ScheduleFacts): Promise<void> {
  if (o.action === 'show') {
    const present = f.files.filter(([, t]) => t !== undefined);
    return ctx.io.out(present.length ? present.map(([file, t]) => `# ${file}\n${t}`).join('\n') : 'no pgmam schedule is installed\n');
  }
  const drill = ctx.config['drill-schedule'];
  if (f.systemd)
    return ctx.io.out(
      o.action === 'install' ? `installed ${TIMER} (OnCalendar=${cronToCalendar(ctx.config.schedule)})${drill ? ` and ${DRILL_TIMER} (OnCalendar=${cronToCalendar(drill)})` : ''}\n` : `removed ${TIMER} and ${DRILL_TIMER}\n`,
    );
  ctx.io.out(o.action === 'install' ? `installed ${CRON_FILE}: ${ctx.config.schedule} pgmam backup --all${drill ? `; ${drill} pgmam drill --all` : ''}\n` : `removed ${CRON_FILE}\n`);
}

export const scheduleCommand: CommandModule<ScheduleOptions, ScheduleFacts, ScheduleJournal> = {
  spec: {
    name: 'schedule',
    summary: 'install, show or remove the schedule that runs pgmam backup --all and pgmam drill --all (cron, or systemd timers)',
    cli: {
      args: [{ syntax: '<action>', key: 'action', help: 'install | show | remove' }],
      input: z.object({ action: z.string(), selfPath: z.string() }).transform((r) => ({ action: r.action, pgmam: r.selfPath })),
    },
    options: scheduleOptionsSchema,
    check: (o) => {
      if (!['install', 'show', 'remove'].includes(o.action)) throw new UsageError(`schedule takes install, show or remove (got "${o.action}")`);
    },
    examples: ['pgmam schedule install', 'pgmam schedule show', 'pgmam schedule remove'],
    // show only reads; install and remove journal and lock under a name of their own.
    target: (o) => (o.action === 'show' ? '' : SCHEDULE_JOURNAL),
    destructive: false,
    journal: scheduleJournalSchema,
  },
  gather: (ctx) => gatherSchedule(ctx),
  guards: scheduleGuards,
  plan: planSchedule,
  recover: recoverSchedule,
  report: reportSchedule,
};
