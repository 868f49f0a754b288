import { execFile, spawn } from 'node:child_process';
import { type EngineInfo, type Resource, databaseKind } from '@kumo/api';
import { type Command, Option } from 'commander';
import { CliError, EXIT } from '../core/exit-codes.js';
import { collectionPath, itemPath } from '../core/kinds.js';
import { table, writeOutput } from '../core/output.js';
import { type Invocation, type Runtime, invocation } from '../core/runtime.js';
import { parseDuration } from '../core/wait.js';
import { finish, parseLabels } from './resources.js';

const def = databaseKind;
const collect = (value: string, previous: string[] = []) => [...previous, value];

interface Credentials {
  username: string;
  password: string;
  database: string;
  host: string | null;
  port: number | null;
  uri: string | null;
  version: number;
}

/** "max_connections=200" → ["max_connections", 200]: numbers and booleans typed, the rest strings. */
export function parseParameter(value: string): [string, string | number | boolean] {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new CliError(`--param takes name=value (got "${value}").`, EXIT.usage);
  const name = value.slice(0, eq);
  const raw = value.slice(eq + 1);
  if (raw === 'true' || raw === 'false') return [name, raw === 'true'];
  if (raw !== '' && !Number.isNaN(Number(raw))) return [name, Number(raw)];
  return [name, raw];
}

/** "203.0.113.0/24=office" → {cidr, description}. */
export function parseAcl(
  value: string,
  expiresAt?: string,
): { cidr: string; description?: string; expiresAt?: string } {
  const [cidr, ...description] = value.split('=');
  return {
    cidr: cidr!,
    ...(description.length ? { description: description.join('=') } : {}),
    ...(expiresAt ? { expiresAt } : {}),
  };
}

/** What the platform says of an engine (GET /v1/engines): the CLI knows no engine itself. */
async function engineInfo(inv: Invocation, engine: string): Promise<EngineInfo> {
  const { items } = await inv.client.request<{ items: EngineInfo[] }>('GET', '/v1/engines');
  const info = items.find((e) => e.engine === engine);
  if (!info)
    throw new CliError(
      `This platform cannot run ${engine}; it runs ${items.map((e) => e.engine).join(', ') || 'no engine yet'} (see \`kumo engines\`).`,
      EXIT.invalid,
    );
  return info;
}

/** The newest version of an engine this platform can run. */
type EngineClient = EngineInfo['client'];

function cannotRun(client: EngineClient, err: Error): CliError {
  return new CliError(
    `Cannot run ${client.program}: ${err.message}. Install it (Debian: apt-get install ${client.package}).`,
    EXIT.failure,
  );
}

/**
 * Runs the engine's check command (its client with check.args) and fails unless it prints what a
 * working connection prints: for clients that exit 0 when the server hung up on them.
 */
async function checkConnection(
  name: string,
  client: EngineClient,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<void> {
  const check = client.check!;
  const output = await new Promise<string>((resolve, reject) =>
    execFile(client.program, args, { env, timeout: 30_000 }, (err, stdout, stderr) => {
      if ((err as NodeJS.ErrnoException | null)?.code === 'ENOENT') reject(cannotRun(client, err!));
      else resolve(`${stdout}${stderr}`.trim());
    }),
  );
  if (output === check.expect) return;
  throw new CliError(
    `${client.program} could not talk to db/${name}: ${output.split('\n').filter(Boolean).join('; ') || 'no answer'}. ` +
      `If your address is not in its access list, add it: kumo db update ${name} --add-acl ADDRESS/32.`,
    EXIT.failure,
  );
}

async function defaultVersion(inv: Invocation, engine: string): Promise<string> {
  return (await engineInfo(inv, engine)).versions[0]!;
}

async function patchDatabase(
  runtime: Runtime,
  inv: Invocation,
  name: string,
  patch: unknown,
  verb: string,
  options: { ifMatch?: string; dryRun?: boolean } = {},
): Promise<void> {
  const path = itemPath(def, inv.project, name) + (options.dryRun ? '?dryRun=true' : '');
  const res = await inv.client.request<
    Resource & { effect?: string; changes?: Array<{ field: string; effect: string }> }
  >('PATCH', path, {
    body: patch,
    contentType: 'application/merge-patch+json',
    ...(options.ifMatch ? { headers: { 'if-match': options.ifMatch } } : {}),
  });
  if (options.dryRun) {
    return writeOutput(runtime.stdout, inv.format, res, () => {
      const effect =
        res.effect === 'none' ? 'need neither a reload nor a restart' : `${res.effect} the server`;
      const changes = res.changes?.length
        ? table(
            ['FIELD', 'EFFECT'],
            res.changes.map((c) => [c.field, c.effect]),
          )
        : '';
      return `Dry run — nothing changed. This change would ${effect}.\n${changes}`;
    });
  }
  await finish(runtime, inv, def, res, verb);
}

export function registerDbCommands(program: Command, runtime: Runtime): void {
  const db = program.commands.find((c) => c.name() === 'db')!;

  db.command('create')
    .description('Create a managed database of one of the engines `kumo engines` lists.')
    .argument('<name>')
    .addOption(new Option('--engine <engine>', 'database engine (see `kumo engines`)').makeOptionMandatory())
    .option('--version <version>', 'engine version (default: the newest the platform runs)')
    .option('--plan <plan>', 'size: small, medium or large (see `kumo engines`)', 'small')
    .option('--storage <GB>', 'storage quota in GB', (v: string) => Number(v))
    .option('--param <name=value>', 'an engine parameter (repeatable)', collect)
    .option(
      '--acl <cidr[=description]>',
      'a network allowed to connect (repeatable); none means no network access',
      collect,
    )
    .option('--add-acl <cidr[=description]>', 'the same as --acl (the name db update uses)', collect)
    .option('--temporary', 'the ACL entries expire after --for')
    .option('--for <duration>', 'how long --temporary entries last, e.g. 2h', '1h')
    .option('--label <key=value>', 'a label (repeatable)', collect)
    .option('--stopped', 'create it stopped')
    .option('--target <target>', 'run it on this target (default: placement picks a Ready one)')
    .option(
      '--target-selector <key=value>',
      'placement picks among targets with this label (repeatable)',
      collect,
    )
    .option('--from-backup <backup>', "start from this backup's data (a fork; the source is untouched)")
    .option('--backup-schedule <cron>', 'take backups on this schedule, e.g. "0 3 * * *"')
    .option('--backup-timezone <tz>', 'time zone of --backup-schedule (default UTC)')
    .option('--backup-keep <n>', 'keep this many scheduled backups (default 7)', (v: string) => Number(v))
    .option('--backup-keep-days <days>', 'and none older than this', (v: string) => Number(v))
    .option('--backup-verify', 'verify each scheduled backup once it is stored')
    .addHelpText(
      'after',
      '\nExamples:\n  kumo db create orders --engine postgres --version 15 --plan small --acl 203.0.113.0/24=office --wait\n  kumo db create cache --engine redis --param maxmemory-policy=allkeys-lru --acl 10.0.0.0/8\n  kumo db create orders-copy --engine postgres --from-backup orders-20261122030000 --wait\n  kumo db create ledger --engine postgres --backup-schedule "0 3 * * *" --backup-timezone Europe/Berlin --backup-keep 14\n  kumo db create events --engine postgres --target-selector zone=eu-1',
    )
    .action(
      async (
        name: string,
        o: {
          engine: string;
          version?: string;
          plan: string;
          storage?: number;
          param?: string[];
          acl?: string[];
          addAcl?: string[];
          temporary?: boolean;
          for: string;
          label?: string[];
          stopped?: boolean;
          target?: string;
          targetSelector?: string[];
          fromBackup?: string;
        } & BackupPolicyOptions,
        cmd: Command,
      ) => {
        const inv = await invocation(runtime, cmd);
        const policy = backupPolicy(o);
        const spec = {
          engine: o.engine,
          version: o.version ?? (await defaultVersion(inv, o.engine)),
          plan: o.plan,
          ...(o.storage !== undefined ? { storageGB: o.storage } : {}),
          parameters: Object.fromEntries((o.param ?? []).map(parseParameter)),
          acl: [...(o.acl ?? []), ...(o.addAcl ?? [])].map((a) =>
            parseAcl(a, o.temporary ? new Date(Date.now() + parseDuration(o.for)).toISOString() : undefined),
          ),
          ...(o.stopped ? { stopped: true } : {}),
          ...(o.target ? { target: o.target } : {}),
          ...(o.targetSelector ? { targetSelector: parseLabels(o.targetSelector) } : {}),
          ...(o.fromBackup ? { restoreFrom: { backup: o.fromBackup } } : {}),
          ...(policy ? { backupPolicy: policy } : {}),
        };
        const res = await inv.client.request<Resource>('POST', collectionPath(def, inv.project), {
          body: { metadata: { name, labels: parseLabels(o.label) }, spec },
        });
        await finish(runtime, inv, def, res, 'created');
      },
    );

  db.command('update')
    .description(
      'Change a database: plan, storage, parameters, access list. Use --dry-run to see whether it reloads or restarts.',
    )
    .argument('<name>')
    .option('--plan <plan>', 'new plan (restarts the server)')
    .option('--storage <GB>', 'new storage quota in GB', (v: string) => Number(v))
    .option('--param <name=value>', 'set a parameter (repeatable)', collect)
    .option('--unset-param <name>', 'back to the default (repeatable)', collect)
    .option(
      '--acl <cidr[=description]>',
      'the whole access list, as on create (repeatable; replaces every entry)',
      collect,
    )
    .option('--add-acl <cidr[=description]>', 'allow a network (repeatable)', collect)
    .option('--remove-acl <cidr>', 'stop allowing a network (repeatable)', collect)
    .option('--temporary', 'added ACL entries expire after --for')
    .option('--for <duration>', 'how long --temporary entries last, e.g. 2h', '1h')
    .option('--backup-schedule <cron>', 'take backups on this schedule, e.g. "0 3 * * *"')
    .option('--backup-timezone <tz>', 'time zone of --backup-schedule (default UTC)')
    .option('--backup-keep <n>', 'keep this many scheduled backups (default 7)', (v: string) => Number(v))
    .option('--backup-keep-days <days>', 'and none older than this', (v: string) => Number(v))
    .option('--backup-verify', 'verify each scheduled backup once it is stored')
    .option('--no-backup-schedule', 'stop scheduled backups (existing backups stay)')
    .option('--dry-run', 'only say what would change and how it takes effect')
    .option('--if-match <resourceVersion>', 'only if nobody changed it since this resourceVersion')
    .addHelpText(
      'after',
      '\nExamples:\n  kumo db update orders --param work_mem=8192 --dry-run\n  kumo db update orders --plan medium --wait\n  kumo db update orders --add-acl 198.51.100.7/32=support --temporary --for 2h\n  kumo db update orders --backup-schedule "30 2 * * *" --backup-keep 14',
    )
    .action(
      async (
        name: string,
        o: {
          plan?: string;
          storage?: number;
          param?: string[];
          unsetParam?: string[];
          acl?: string[];
          addAcl?: string[];
          removeAcl?: string[];
          temporary?: boolean;
          for: string;
          dryRun?: boolean;
          ifMatch?: string;
        } & Omit<BackupPolicyOptions, 'backupSchedule'> & { backupSchedule?: string | false },
        cmd: Command,
      ) => {
        const inv = await invocation(runtime, cmd);
        const spec: Record<string, unknown> = {};
        if (o.backupSchedule === false) spec.backupPolicy = null;
        else {
          const policy = backupPolicy({ ...o, backupSchedule: o.backupSchedule });
          if (policy) spec.backupPolicy = policy;
        }
        if (o.plan) spec.plan = o.plan;
        if (o.storage !== undefined) spec.storageGB = o.storage;
        if (o.param || o.unsetParam) {
          spec.parameters = {
            ...Object.fromEntries((o.param ?? []).map(parseParameter)),
            ...Object.fromEntries((o.unsetParam ?? []).map((p) => [p, null])),
          };
        }
        let ifMatch = o.ifMatch;
        const expiring = o.temporary ? new Date(Date.now() + parseDuration(o.for)).toISOString() : undefined;
        if (o.acl) {
          if (o.addAcl || o.removeAcl)
            throw new CliError(
              '--acl sets the whole list: use it alone, or --add-acl/--remove-acl.',
              EXIT.usage,
            );
          spec.acl = o.acl.map((a) => parseAcl(a, expiring));
        } else if (o.addAcl || o.removeAcl) {
          // Lists are replaced by a merge patch: read, edit, and write back only if nobody changed it meanwhile.
          const current = await inv.client.request<Resource>('GET', itemPath(def, inv.project, name));
          ifMatch ??= current.metadata.resourceVersion;
          const acl = (current.spec.acl as Array<{ cidr: string }>).filter(
            (e) => !(o.removeAcl ?? []).includes(e.cidr),
          );
          spec.acl = [...acl, ...(o.addAcl ?? []).map((a) => parseAcl(a, expiring))];
        }
        if (Object.keys(spec).length === 0)
          throw new CliError(
            'Nothing to change: pass --plan, --storage, --param, --unset-param, --acl, --add-acl, --remove-acl or a --backup-* option.',
            EXIT.usage,
          );
        await patchDatabase(runtime, inv, name, { spec }, 'updated', {
          ...(ifMatch ? { ifMatch } : {}),
          ...(o.dryRun ? { dryRun: true } : {}),
        });
      },
    );

  for (const [verb, stopped] of [
    ['stop', true],
    ['start', false],
  ] as const) {
    db.command(verb)
      .description(
        verb === 'stop' ? 'Stop the server (data is kept; scale to zero).' : 'Start a stopped server.',
      )
      .argument('<name>')
      .addHelpText('after', `\nExample:\n  kumo db ${verb} orders --wait`)
      .action(async (name: string, _o: unknown, cmd: Command) => {
        await patchDatabase(
          runtime,
          await invocation(runtime, cmd),
          name,
          { spec: { stopped } },
          verb === 'stop' ? 'stopping' : 'starting',
        );
      });
  }

  db.command('credentials')
    .description("Show the owner's user, password and connection URI (recorded in the audit log).")
    .argument('<name>')
    .option('--rotate', 'replace the password first; the old one stops working')
    .addHelpText(
      'after',
      '\nExamples:\n  kumo db credentials orders\n  kumo db credentials orders -o json | jq -r .uri\n  kumo db credentials orders --rotate',
    )
    .action(async (name: string, o: { rotate?: boolean }, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      const path = `${itemPath(def, inv.project, name)}/credentials${o.rotate ? '/rotate' : ''}`;
      const creds = await inv.client.request<Credentials>(o.rotate ? 'POST' : 'GET', path);
      writeOutput(runtime.stdout, inv.format, creds, () =>
        table(
          ['FIELD', 'VALUE'],
          Object.entries(creds).map(([k, v]) => [k, String(v ?? '-')]),
        ),
      );
    });

  db.command('connect')
    .description(
      "Open the engine's own client (psql, redis-cli, …) on the database. The password goes through the environment, never the command line. Arguments after -- go to the client.",
    )
    .argument('<name>')
    .argument('[args...]', 'passed to the client')
    .addHelpText(
      'after',
      '\nExamples:\n  kumo db connect orders\n  kumo db connect orders -- -c "select count(*) from items"',
    )
    .action(async (name: string, args: string[], _o: unknown, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      const res = await inv.client.request<Resource>('GET', itemPath(def, inv.project, name));
      const creds = await inv.client.request<Credentials>(
        'GET',
        `${itemPath(def, inv.project, name)}/credentials`,
      );
      if (!creds.host || !creds.port)
        throw new CliError(
          `db/${name} has no endpoint yet (it is ${res.status.phase ?? 'Pending'}).`,
          EXIT.failure,
        );
      const client = (await engineInfo(inv, (res.spec as { engine: string }).engine)).client;
      const fields: Record<string, string> = {
        host: creds.host,
        port: String(creds.port),
        username: creds.username,
        database: creds.database,
      };
      const binary = client.program;
      const clientArgs = [
        ...client.args.map((arg) =>
          arg.replace(/\{(\w+)\}/g, (whole, field: string) => fields[field] ?? whole),
        ),
      ];
      const env = { ...runtime.env, [client.passwordEnv]: creds.password };
      if (client.check) await checkConnection(name, client, [...clientArgs, ...client.check.args], env);
      const code = await new Promise<number>((resolve, reject) => {
        const child = spawn(binary, [...clientArgs, ...args], { stdio: 'inherit', env });
        child.once('error', (err) => reject(cannotRun(client, err)));
        child.once('exit', (c) => resolve(c ?? 1));
      });
      process.exitCode = code;
    });

  db.command('logs')
    .description("Show the server's log; --follow keeps streaming new lines.")
    .argument('<name>')
    .option('--tail <lines>', 'how many recent lines', '100')
    .option('-f, --follow', 'keep streaming')
    .addHelpText('after', '\nExamples:\n  kumo db logs orders --tail 20\n  kumo db logs orders --follow')
    .action(async (name: string, o: { tail: string; follow?: boolean }, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      await inv.client.lines(
        `${itemPath(def, inv.project, name)}/logs?tail=${Number(o.tail)}${o.follow ? '&follow=true' : ''}`,
        (line) => runtime.stdout.write(line + '\n'),
      );
    });

  program
    .command('engines')
    .description('Engines, versions, plans and parameters this platform can run.')
    .addHelpText('after', '\nExamples:\n  kumo engines\n  kumo engines -o json')
    .action(async (_o: unknown, cmd: Command) => {
      const inv = await invocation(runtime, cmd);
      const { items } = await inv.client.request<{ items: EngineInfo[] }>('GET', '/v1/engines');
      writeOutput(runtime.stdout, inv.format, items, () =>
        items
          .map((e) =>
            [
              `${e.engine} ${e.versions.join(', ')} — ${e.description}\n`,
              table(
                ['PLAN', 'MEMORY', 'CONNECTIONS', 'MAX STORAGE'],
                e.plans.map((p) => [
                  p.name,
                  `${p.memoryMB} MB`,
                  String(p.maxConnections),
                  `${p.maxStorageGB} GB`,
                ]),
              ),
              table(
                ['PARAMETER', 'TYPE', 'RANGE', 'APPLIED BY'],
                e.parameters.map((p) => [
                  p.name,
                  p.type,
                  p.values?.join('|') ??
                    (p.min !== undefined ? `${p.min}..${p.max}${p.unit ? ` ${p.unit}` : ''}` : ''),
                  p.apply,
                ]),
              ),
            ].join(''),
          )
          .join('\n'),
      );
    });
}

interface BackupPolicyOptions {
  backupSchedule?: string;
  backupTimezone?: string;
  backupKeep?: number;
  backupKeepDays?: number;
  backupVerify?: boolean;
}

/** The spec.backupPolicy the --backup-* options ask for, or undefined without --backup-schedule. */
function backupPolicy(o: BackupPolicyOptions): Record<string, unknown> | undefined {
  if (!o.backupSchedule) {
    if (o.backupTimezone || o.backupKeep || o.backupKeepDays || o.backupVerify)
      throw new CliError(
        '--backup-timezone, --backup-keep* and --backup-verify need --backup-schedule.',
        EXIT.usage,
      );
    return undefined;
  }
  return {
    schedule: o.backupSchedule,
    ...(o.backupTimezone ? { timezone: o.backupTimezone } : {}),
    ...(o.backupKeep !== undefined ? { keepLast: o.backupKeep } : {}),
    ...(o.backupKeepDays !== undefined ? { keepDays: o.backupKeepDays } : {}),
    ...(o.backupVerify ? { verify: true } : {}),
  };
}
