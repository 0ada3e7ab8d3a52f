// `pgmam repo serve [--address A] [--port N] --ca-file F --cert-file F --key-file F --allow CN…`: run
// pgBackRest's TLS server on this host, as postgres, started at boot (a systemd unit where systemd runs,
// a cron @reboot line otherwise). On a repository host it serves this host's posix repository to the app
// hosts whose certificate CNs it allows; on an app host it lets the repository host reach the clusters
// it backs up (pgBackRest runs a backup only where the repository is local). `--stop` stops it and
// removes what serve made; the repository and its backups stay.
import { z } from 'zod';
import type { Context } from '../../context.js';
import { UsageError } from '../../errors.js';
import { runsAsRoot } from '../../guards/host.js';
import { listeningPorts, postgresOwner } from '../../host/facts.js';
import { absolutePath, flag } from '../../plan/cli-spec.js';
import { runFlagsSchema, type CommandModule, type PlanBody, type PlanEnv, type Recovery } from '../../plan/command.js';
import { fail, pass, required, type Guard, type Step } from '../../plan/types.js';
import { renderServeCron, renderServerConfig, renderServerUnit, serverPing, startServerArgv, stopServerArgv } from '../../pgbackrest/server.js';
import { renderArgv } from '../../runner/types.js';
import type { Journal } from '../../state/journal.js';
import {
  PGBACKREST_BIN,
  readServe,
  SERVE_CRON_FILE,
  serveCaPath,
  serveCertPath,
  serveDir,
  serveKeyPath,
  serveRecordPath,
  serverConfigPath,
  serverPidPath,
  SERVER_UNIT,
  type ServeRecord,
} from '../../state/serve.js';
import { DEFAULT_TLS_PORT } from './add-tls.js';
import { NO_TLS_FILES, readTlsFiles, type TlsFiles } from '../../host/tls-files.js';
import { tlsFilesAreUsable } from '../../guards/tls-files.js';

const UNIT_FILE = `/etc/systemd/system/${SERVER_UNIT}`;
/** The lock and journal of serve: a name no cluster can have. */
export const SERVE_TARGET = '_serve';

export const repoServeOptionsSchema = runFlagsSchema.extend({
  stop: z.boolean(),
  address: z.string().optional(),
  port: z.number().int(),
  caFile: z.string().optional(),
  certFile: z.string().optional(),
  keyFile: z.string().optional(),
  allow: z.array(z.string()),
});
export type RepoServeOptions = z.infer<typeof repoServeOptionsSchema>;

export interface RepoServeFacts extends TlsFiles {
  uid: number;
  systemd: boolean;
  hostName: string;
  current: ServeRecord | undefined;
  postgres: { uid: number; gid: number } | undefined;
  binary: boolean;
  /** Another process listens on the port (not this host's server as its record says). */
  portTaken: boolean;
  now: string;
}

export async function gatherRepoServe(ctx: Context, o: RepoServeOptions): Promise<RepoServeFacts> {
  const f: RepoServeFacts = { uid: ctx.host.uid, systemd: ctx.host.systemd, hostName: ctx.host.name, current: undefined, ...NO_TLS_FILES, postgres: undefined, binary: false, portTaken: false, now: ctx.clock.now().toISOString() };
  if (ctx.host.uid !== 0) return f;
  f.current = await readServe(ctx.fs, ctx.paths.stateDir);
  if (o.stop) return f;
  f.postgres = await postgresOwner(ctx.fs);
  f.binary = await ctx.fs.isExecutable(PGBACKREST_BIN);
  Object.assign(f, await readTlsFiles(ctx.fs, o));
  f.portTaken = (await listeningPorts(ctx.fs)).has(o.port) && f.current?.port !== o.port;
  return f;
}

export function repoServeGuards(f: RepoServeFacts, o: RepoServeOptions): Guard[] {
  const root = f.uid === 0;
  if (o.stop) return [runsAsRoot(f.uid, 'stop the pgBackRest server'), { id: 'host-serves', check: () => (!root || f.current ? pass : fail('this host runs no pgBackRest server of pgmam’s', 'see pgmam repo list')) }];
  return [
    runsAsRoot(f.uid, 'run the pgBackRest server'),
    { id: 'postgres-user-exists', check: () => (!root || f.postgres ? pass : fail('the host has no postgres user (is postgresql-common installed?)')) },
    { id: 'pgbackrest-is-installed', check: () => (!root || f.binary ? pass : fail(`${PGBACKREST_BIN} is missing`, 'apt-get install pgbackrest')) },
    ...tlsFilesAreUsable(f, o, root),
    { id: 'port-is-free', check: () => (f.portTaken ? fail(`port ${o.port} is in use by another process`, 'choose another with --port') : pass) },
  ];
}

export const repoServeJournalSchema = z.object({ stop: z.boolean(), systemd: z.boolean() });
export type RepoServeJournal = z.infer<typeof repoServeJournalSchema>;

const systemctl = (args: string[], check = true): Step => ({
  id: `systemctl-${args[0]}`,
  title: `systemctl ${args.join(' ')}`,
  effect: 'write',
  run: async (c) => void (await c.runner.run({ argv: ['systemctl', ...args], effect: 'write' }, { check })),
});

/** Stop the server and remove what serve made (pgmam's own files): each step can run again. */
export function stopServeSteps(stateDir: string, systemd: boolean): Step[] {
  const dir = serveDir(stateDir);
  const start: Step[] = systemd
    ? [systemctl(['disable', '--now', SERVER_UNIT], false), { id: 'remove-unit', title: `remove ${UNIT_FILE}`, effect: 'destroy', run: (c) => c.fs.rm(UNIT_FILE), show: [`rm -f ${UNIT_FILE}`] }, systemctl(['daemon-reload'])]
    : [];
  return [
    ...start,
    // Also under systemd: a server started before systemd ran (or by an earlier serve) goes by its PID file.
    { id: 'stop-server', title: 'stop the pgBackRest server pgmam started (its PID file)', effect: 'write', run: { argv: stopServerArgv(serverPidPath(stateDir), PGBACKREST_BIN), effect: 'write' } },
    { id: 'remove-serve-cron', title: `remove ${SERVE_CRON_FILE}`, effect: 'destroy', run: (c) => c.fs.rm(SERVE_CRON_FILE), show: [`rm -f ${SERVE_CRON_FILE}`] },
    { id: 'remove-serve-files', title: `remove ${dir} (pgmam's copies, configuration and record of the server)`, effect: 'destroy', run: (c) => c.fs.rm(dir, { recursive: true }), show: [`rm -rf ${dir}`] },
  ];
}

export function planRepoServe(f: RepoServeFacts, o: RepoServeOptions, env: PlanEnv): PlanBody {
  const stateDir = env.paths.stateDir;
  const data: RepoServeJournal = { stop: o.stop, systemd: f.systemd };
  if (o.stop) return { target: SERVE_TARGET, steps: stopServeSteps(stateDir, f.current?.via === 'systemd' || f.systemd), journal: { rerun: 'pgmam repo serve --stop --yes', data } };
  const dir = serveDir(stateDir);
  const files = { ca: serveCaPath(stateDir), cert: serveCertPath(stateDir), key: serveKeyPath(stateDir) };
  const address = o.address ?? f.hostName;
  const record: ServeRecord = { format: 1, address, port: o.port, allow: o.allow, via: f.systemd ? 'systemd' : 'cron', createdAt: f.now };
  const conf = serverConfigPath(stateDir);
  const pg = required(f.postgres, 'the postgres user');
  const steps: Step[] = [
    {
      id: 'copy-server-certificates',
      title: `copy the CA, this host’s certificate and its key into ${dir} (the key root:postgres 0640)`,
      effect: 'write',
      run: async (c) => {
        await c.fs.mkdirp(dir, { mode: 0o755, owner: { uid: 0, gid: 0 } });
        await c.fs.writeFileAtomic(files.ca, required(f.ca, 'the CA'), { mode: 0o644, owner: { uid: 0, gid: 0 } });
        await c.fs.writeFileAtomic(files.cert, required(f.cert, 'the certificate'), { mode: 0o644, owner: { uid: 0, gid: 0 } });
        await c.fs.writeFileAtomic(files.key, required(f.key.pem, 'the key'), { mode: 0o640, owner: { uid: 0, gid: pg.gid } });
      },
      show: [`write ${files.ca} (0644) from ${o.caFile}`, `write ${files.cert} (0644) from ${o.certFile}`, `write ${files.key} (0640 root:postgres) from ${o.keyFile}`],
    },
    {
      id: 'write-server-config',
      title: `write the server's configuration ${conf}`,
      effect: 'write',
      run: (c) => c.fs.writeFileAtomic(conf, renderServerConfig({ address, port: o.port, allow: o.allow, files }), { mode: 0o640, owner: { uid: 0, gid: pg.gid } }),
      show: renderServerConfig({ address, port: o.port, allow: o.allow, files }).trimEnd().split('\n').map((l) => `  | ${l}`),
    },
  ];
  if (f.systemd) {
    const unit = renderServerUnit(conf, PGBACKREST_BIN);
    steps.push(
      { id: 'write-server-unit', title: `write ${UNIT_FILE}`, effect: 'write', run: (c) => c.fs.writeFileAtomic(UNIT_FILE, unit, { mode: 0o644, owner: { uid: 0, gid: 0 } }), show: unit.trimEnd().split('\n').map((l) => `  | ${l}`) },
      systemctl(['daemon-reload']),
      systemctl(['enable', SERVER_UNIT]),
      // A restart: a running server reads its configuration (the allowed CNs) only when it starts.
      systemctl(['restart', SERVER_UNIT]),
    );
  } else {
    const cron = renderServeCron(serverPidPath(stateDir), conf, PGBACKREST_BIN);
    steps.push(
      { id: 'write-serve-cron', title: `write ${SERVE_CRON_FILE} (start it at boot)`, effect: 'write', run: (c) => c.fs.writeFileAtomic(SERVE_CRON_FILE, cron, { mode: 0o644, owner: { uid: 0, gid: 0 } }), show: cron.trimEnd().split('\n').map((l) => `  | ${l}`) },
      { id: 'stop-server', title: 'stop the server an earlier serve started (it reads its configuration only when it starts)', effect: 'write', run: { argv: stopServerArgv(serverPidPath(stateDir), PGBACKREST_BIN), effect: 'write' } },
      { id: 'start-server', title: `start pgbackrest server as postgres on ${address}:${o.port}`, effect: 'write', run: { argv: startServerArgv(serverPidPath(stateDir), conf, PGBACKREST_BIN), effect: 'write' } },
    );
  }
  steps.push(
    { id: 'ping-server', title: `wait until the server answers on ${address}:${o.port}`, effect: 'write', run: serverPing(address, o.port), show: [`$ ${renderArgv(serverPing(address, o.port).argv)}`] },
    {
      id: 'write-serve-record',
      title: `record the server (${serveRecordPath(stateDir)})`,
      effect: 'write',
      run: (c) => c.fs.writeFileAtomic(serveRecordPath(stateDir), `${JSON.stringify(record, null, 2)}\n`, { mode: 0o644, owner: { uid: 0, gid: 0 } }),
    },
  );
  return { target: SERVE_TARGET, steps, journal: { rerun: 'pgmam repo serve … (as before)', data } };
}

/** An interrupted serve is rolled back (the server stopped, pgmam's files of it removed: run serve again); an interrupted --stop is finished. */
export async function recoverRepoServe(ctx: Context, j: Journal, d: RepoServeJournal): Promise<Recovery> {
  const steps = stopServeSteps(ctx.paths.stateDir, d.systemd);
  return d.stop ? { way: 'finished', steps, finished: 'the interrupted repo serve --stop is finished\n' } : { way: 'rolled-back', steps };
}

export const repoServeCommand: CommandModule<RepoServeOptions, RepoServeFacts, RepoServeJournal> = {
  spec: {
    name: 'repo serve',
    summary: "run pgBackRest's TLS server here: this host's repository for app hosts, or this host's clusters for a repository host",
    cli: {
      flags: [
        { flags: '--address <address>', help: 'the address it listens on and others reach it by; its certificate must name it (default: the host name)' },
        { flags: '--port <port>', help: `its port (default ${DEFAULT_TLS_PORT})` },
        { flags: '--ca-file <file>', help: 'the CA that signed the certificates of the hosts it lets in' },
        { flags: '--cert-file <file>', help: 'this host’s certificate (serverAuth and clientAuth: the same one reaches other hosts’ servers)' },
        { flags: '--key-file <file>', help: 'its key (0600 root)' },
        { flags: '--allow <cn...>', help: 'the certificate CN of each host it lets in, for every stanza (repeat or list)' },
        { flags: '--stop', help: 'stop it and remove what serve made (the repository and its backups stay)' },
      ],
      input: z
        .object({ address: z.string().optional(), port: z.string().optional(), caFile: absolutePath('--ca-file'), certFile: absolutePath('--cert-file'), keyFile: absolutePath('--key-file'), allow: z.array(z.string()).optional(), stop: flag })
        .transform((r) => {
          const port = r.port === undefined ? DEFAULT_TLS_PORT : Number(r.port);
          if (!Number.isInteger(port) || port < 1024 || port > 65535) throw new UsageError(`--port must be a port in 1024–65535 (got "${r.port}")`);
          const allow = (r.allow ?? []).flatMap((a) => a.split(',')).map((a) => a.trim()).filter(Boolean);
          if (allow.some((a) => !/^[A-Za-z0-9._@-]+$/.test(a))) throw new UsageError(`--allow takes certificate CNs (letters, digits, . _ @ -): ${allow.join(', ')}`);
          if (r.address !== undefined && !/^[A-Za-z0-9.:-]+$/.test(r.address)) throw new UsageError(`--address "${r.address}" is not a host name or address`);
          if (r.stop) {
            if (r.caFile || r.certFile || r.keyFile || allow.length) throw new UsageError('repo serve --stop takes no certificates and no --allow');
            return { stop: true, port, allow: [] };
          }
          if (!r.caFile || !r.certFile || !r.keyFile) throw new UsageError('repo serve needs --ca-file, --cert-file and --key-file');
          if (!allow.length) throw new UsageError('repo serve needs --allow CN: the certificate CN of each host it lets in');
          return { stop: false, address: r.address, port, caFile: r.caFile, certFile: r.certFile, keyFile: r.keyFile, allow };
        }),
    },
    options: repoServeOptionsSchema,
    examples: ['pgmam repo serve --address vault.example.net --ca-file /root/tls/ca.crt --cert-file /root/tls/vault.crt --key-file /root/tls/vault.key --allow app1.example.net', 'pgmam repo serve --stop'],
    target: () => SERVE_TARGET,
    destructive: (o) => o.stop,
    journal: repoServeJournalSchema,
  },
  gather: gatherRepoServe,
  guards: repoServeGuards,
  plan: planRepoServe,
  recover: recoverRepoServe,
  report: async (ctx, o, f) =>
    ctx.io.out(o.stop ? 'stopped the pgBackRest server and removed what pgmam made of it\n' : `serving on ${o.address ?? f.hostName}:${o.port} (${f.systemd ? SERVER_UNIT : `${SERVE_CRON_FILE} @reboot`}); lets in: ${o.allow.join(', ')}\n`),
};
