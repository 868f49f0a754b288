import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The systemd units in deploy/systemd, checked by the real systemd-analyze (`apt-get install
// systemd`; .ci/run installs it) and read for the settings users rely on: the sandbox, and a
// KillMode that leaves the managed database servers running when Kumo stops or restarts.

const repo = join(import.meta.dirname, '..', '..');
const unitsDir = join(repo, 'deploy', 'systemd');
const kumoBin = join(repo, 'packages', 'cli', 'bin', 'kumo.js');

/** Every unit, what its ExecStart runs, and the exposure `systemd-analyze security` gave it (docs/install.md). */
const units = [
  { file: 'kumo.service', command: 'kumo up', runsDatabases: true, exposure: 3.1 },
  { file: 'kumo-agent@.service', command: 'kumo agent --target %i', runsDatabases: true, exposure: 3.1 },
  { file: 'kumo-server.service', command: 'kumo server', runsDatabases: false, exposure: 1.9 },
];

/** What root keeps to run the servers as the kumo user (the units' comments say why each). */
const DATABASE_CAPS = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FOWNER',
  'CAP_KILL',
  'CAP_SETUID',
  'CAP_SETGID',
  'CAP_SYS_PTRACE',
];

/** The sandbox every unit has, with why a user relies on it. */
const SANDBOX: Array<{ key: string; value: string; reason: string }> = [
  { key: 'ProtectSystem', value: 'strict', reason: 'the whole file system is read-only but its own paths' },
  { key: 'ProtectHome', value: 'yes', reason: "people's home directories are out of reach" },
  { key: 'PrivateDevices', value: 'yes', reason: 'no physical devices' },
  { key: 'PrivateMounts', value: 'yes', reason: 'its mounts stay its own' },
  { key: 'ProtectKernelTunables', value: 'yes', reason: '/proc/sys and /sys are read-only' },
  { key: 'ProtectKernelModules', value: 'yes', reason: 'no kernel modules loaded' },
  { key: 'ProtectKernelLogs', value: 'yes', reason: 'the kernel log is unreadable' },
  { key: 'ProtectControlGroups', value: 'yes', reason: 'the cgroup tree is read-only' },
  { key: 'ProtectClock', value: 'yes', reason: 'the clock cannot be set' },
  { key: 'ProtectHostname', value: 'yes', reason: 'the host name cannot be changed' },
  { key: 'ProtectProc', value: 'invisible', reason: "the servers do not see other users' processes" },
  { key: 'RestrictSUIDSGID', value: 'yes', reason: 'no set-user-ID files can be made' },
  { key: 'RestrictNamespaces', value: 'yes', reason: 'no new namespaces' },
  { key: 'RestrictRealtime', value: 'yes', reason: 'no realtime scheduling' },
  { key: 'LockPersonality', value: 'yes', reason: 'the execution domain is fixed' },
  { key: 'NoNewPrivileges', value: 'yes', reason: 'no set-user-ID program gains privileges' },
  { key: 'SystemCallArchitectures', value: 'native', reason: 'no system calls of other architectures' },
  { key: 'StateDirectory', value: 'kumo', reason: 'systemd creates /var/lib/kumo' },
  { key: 'StateDirectoryMode', value: '0711', reason: 'the kumo user traverses the data directory' },
  { key: 'LimitNOFILE', value: '65536', reason: 'many watches, connections and server files' },
];

/** The directives of a unit file: section → key → every value given, in order. */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let section: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = new Map();
      sections.set(header[1]!, section);
      continue;
    }
    const eq = line.indexOf('=');
    if (!section || eq < 0) throw new Error(`not a directive: ${line}`);
    const key = line.slice(0, eq).trim();
    section.set(key, [...(section.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return sections;
}

/** The value a directive ends up with (the last one given), or undefined when it is not set. */
function last(unit: Map<string, Map<string, string[]>>, key: string): string | undefined {
  return unit.get('Service')?.get(key)?.at(-1);
}

/** Runs systemd-analyze (found on PATH) in cwd: its exit status and everything it printed. */
function analyze(args: string[], cwd: string) {
  const run = spawnSync('systemd-analyze', args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, SYSTEMD_PAGER: '' },
  });
  // Missing, these tests fail (they never skip): the units would ship unchecked.
  if ((run.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT')
    throw new Error(
      'systemd-analyze is missing: these tests check the units with it. Install it with `apt-get install systemd` (.ci/run does).',
    );
  if (run.error) throw run.error;
  return { status: run.status, output: `${run.stdout}${run.stderr}`.trim() };
}

describe('the systemd units in deploy/systemd', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'kumo-units-'));
    // The units run the installed `kumo` by name; this test runs the repository's instead, so that
    // verify's check that the command exists passes and everything else in the unit is verified.
    symlinkSync(kumoBin, join(dir, 'kumo'));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A copy of the unit in the temporary directory (as `name`) whose ExecStart runs the repository's kumo. */
  function copy(file: string, name = file): string {
    const text = readFileSync(join(unitsDir, file), 'utf8');
    const rewritten = text.replace(/^ExecStart=kumo /m, `ExecStart=${join(dir, 'kumo')} `);
    expect(rewritten, `${file}: ExecStart runs the installed kumo by name`).not.toBe(text);
    writeFileSync(join(dir, name), rewritten);
    return name;
  }

  describe.each(units)('$file', ({ file, command, runsDatabases, exposure }) => {
    const unit = parseUnit(readFileSync(join(unitsDir, file), 'utf8'));

    it('passes systemd-analyze verify without a warning', () => {
      // A template is verified as it is and as an instance, with %i filled in.
      const names = file.endsWith('@.service')
        ? [copy(file), copy(file, file.replace('@.', '@b.'))]
        : [copy(file)];
      for (const name of names) {
        const result = analyze(['verify', '--man=no', '--recursive-errors=no', `./${name}`], dir);
        expect(result, name).toEqual({ status: 0, output: '' });
      }
    });

    it('runs the installed kumo command, found on systemd’s search path', () => {
      // `kumo` without a directory: systemd looks in /usr/local/bin and /usr/bin, where npm puts it.
      expect(unit.get('Service')?.get('ExecStart')).toEqual([command]);
    });

    for (const { key, value, reason } of SANDBOX)
      it(`sets ${key}=${value}: ${reason}`, () => expect(last(unit, key)).toBe(value));

    it('leaves MemoryDenyWriteExecute off: V8, the JIT of Node.js, needs writable executable memory', () => {
      expect(last(unit, 'MemoryDenyWriteExecute') ?? 'no').toBe('no');
    });

    it('keeps only the capabilities it needs, each one a name systemd knows', () => {
      const caps = (last(unit, 'CapabilityBoundingSet') ?? '').split(/\s+/).filter(Boolean);
      expect(caps).toEqual(runsDatabases ? DATABASE_CAPS : []);
      // verify accepts an unknown capability silently (and drops it): compare with systemd's list.
      const known = analyze(['capability'], dir).output.toUpperCase();
      for (const cap of caps) expect(known, cap).toMatch(new RegExp(`^${cap}\\s`, 'm'));
    });

    it('writes only in /var/lib/kumo, and /tmp where MariaDB keeps temporary files', () => {
      const writable = (unit.get('Service')?.get('ReadWritePaths') ?? []).flatMap((v) => v.split(/\s+/));
      expect(writable.sort()).toEqual(runsDatabases ? ['/tmp', '/var/lib/kumo'] : ['/var/lib/kumo']);
    });

    if (runsDatabases) {
      it('stops only Kumo itself, so the managed database servers keep running (KillMode=process)', () => {
        expect(last(unit, 'KillMode')).toBe('process');
      });

      it('gives the servers the host’s /tmp, not a private one that systemd removes when the unit stops', () => {
        expect(last(unit, 'PrivateTmp') ?? 'no').toBe('no');
      });

      it('keeps the directories Kumo creates traversable by the kumo user (UMask=0066)', () => {
        expect(last(unit, 'UMask')).toBe('0066');
      });
    } else {
      it('has a private /tmp and a umask that keeps its files its own', () => {
        expect(last(unit, 'PrivateTmp')).toBe('yes');
        expect(last(unit, 'UMask')).toBe('0077');
      });
    }

    it(`is no more exposed than the ${exposure} docs/install.md records (systemd-analyze security)`, () => {
      const name = copy(file, file.replace('@.', '@b.'));
      const result = analyze(['security', '--offline=yes', `./${name}`], dir);
      const score = /Overall exposure level for \S+: (\d+\.\d+)/.exec(result.output);
      expect(score, result.output).not.toBeNull();
      expect(Number(score![1])).toBeLessThanOrEqual(exposure);
    });
  });
});
