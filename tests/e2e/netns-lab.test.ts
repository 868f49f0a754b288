import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Lab, canRunLab, createLab } from '../support/netns-lab.js';

/** Answers every connection on port 8080 with a greeting; says `listening` once it listens. */
const SERVER = `require('node:net').createServer((c) => c.end('hello from ' + process.argv[1]))
  .listen(8080, () => console.log('listening'));`;
/** Connects to argv[1]:argv[2] and prints what it is told, else why it could not (exit 1). */
const CLIENT = `const s = require('node:net').connect({ host: process.argv[1], port: +process.argv[2], timeout: 1500 });
  s.on('data', (d) => process.stdout.write(d));
  s.on('error', (e) => { console.log(e.code); process.exit(1); });
  s.on('timeout', () => { console.log('timeout'); process.exit(1); });`;
/** Prints whom it runs as, then waits to be killed. */
const WHOAMI = `console.log(JSON.stringify({ uid: process.getuid(), gid: process.getgid(), groups: process.getgroups() }));
  setInterval(() => {}, 1000);`;
const NOBODY = 65534;

const can = canRunLab();

describe.skipIf(!can.ok)(`a netns lab${can.ok ? '' : ` (skipped: ${can.reason})`}`, () => {
  let lab: Lab;
  let server: ChildProcess;
  const started: number[] = [];

  beforeAll(async () => {
    lab = await createLab(['a', 'b', 'c']);
    server = lab.spawn('b', process.execPath, ['-e', SERVER, 'b'], { stdio: ['ignore', 'pipe', 'inherit'] });
    expect(await firstLine(server)).toBe('listening');
    started.push(server.pid!);
  });
  afterAll(() => lab?.close());

  const fromHost = (host: string, address: string) =>
    lab.exec(host, process.execPath, ['-e', CLIENT, address, '8080']);

  it('numbers the hosts from .11 in the order given, on one subnet with no way out', async () => {
    const base = lab.subnet.replace(/\.0\/24$/, '');
    expect(Object.values(lab.hosts).map((h) => h.address)).toEqual([
      `${base}.11`,
      `${base}.12`,
      `${base}.13`,
    ]);
    const routes = await lab.exec('a', 'ip', ['-4', 'route']);
    expect(routes.stdout.trim()).toBe(`${lab.subnet} dev eth0 proto kernel scope link src ${base}.11`);
  });

  it('gives each host a loopback of its own, 127.0.0.2 included', async () => {
    const loopback = `require('node:net').createServer((c) => c.end('ok')).listen(8080, '127.0.0.2', () =>
      require('node:net').connect(8080, '127.0.0.2').on('data', (d) => { console.log(String(d)); process.exit(0); }));`;
    // The same port in two hosts at once: their loopbacks are apart.
    const [inA, inC] = await Promise.all([
      lab.exec('a', process.execPath, ['-e', loopback]),
      lab.exec('c', process.execPath, ['-e', loopback]),
    ]);
    expect([inA.stdout, inC.stdout]).toEqual(['ok\n', 'ok\n']);
  });

  it("lets host a reach a server in host b at b's address", async () => {
    expect(await fromHost('a', lab.hosts.b!.address)).toMatchObject({ code: 0, stdout: 'hello from b' });
  });

  it("keeps the lab's addresses out of the root namespace", async () => {
    const address = lab.hosts.b!.address;
    expect(execFileSync('ip', ['-o', 'addr'], { encoding: 'utf8' })).not.toContain(address);
    // Not "the connection fails": a machine's default route may lead to a proxy that accepts any
    // connection. What must not happen is reaching b's server.
    const socket = connect({ host: address, port: 8080, timeout: 1500 });
    const heard = await new Promise<string>((resolve) => {
      let text = '';
      socket.on('data', (d: Buffer) => (text += d.toString()));
      socket.on('close', () => resolve(text));
      socket.on('error', () => {}); // 'close' follows
      socket.on('timeout', () => socket.destroy());
    });
    expect(heard).not.toContain('hello from b');
  });

  it('makes b unreachable on cut and reachable again on restore', async () => {
    await lab.cut('b');
    const [fromA, fromC] = await Promise.all([
      fromHost('a', lab.hosts.b!.address),
      fromHost('c', lab.hosts.b!.address),
    ]);
    expect(fromA).toMatchObject({ code: 1, stdout: expect.stringMatching(/^(timeout|EHOSTUNREACH)\n$/) });
    expect(fromC.code).toBe(1);
    // Only b's link is cut: c, which listens on nothing, still answers a with a refusal.
    expect(await fromHost('a', lab.hosts.c!.address)).toMatchObject({ code: 1, stdout: 'ECONNREFUSED\n' });
    await lab.restore('b');
    expect(await fromHost('a', lab.hosts.b!.address)).toMatchObject({ code: 0, stdout: 'hello from b' });
  });

  it('runs a process as an unprivileged uid when asked', async () => {
    const child = lab.spawn('c', process.execPath, ['-e', WHOAMI], {
      uid: NOBODY,
      gid: NOBODY,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    started.push(child.pid!);
    expect(JSON.parse(await firstLine(child))).toEqual({ uid: NOBODY, gid: NOBODY, groups: [NOBODY] });
    // As the kernel sees it, real, effective, saved and filesystem ids alike.
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
    expect(/^Uid:\s+(.*)$/m.exec(status)?.[1]?.split(/\s+/)).toEqual(Array(4).fill(String(NOBODY)));
    expect(/^CapEff:\s+(\S+)$/m.exec(status)?.[1]).toBe('0000000000000000');
  });

  it('kills everything in its namespaces and deletes them on close, and may close again', async () => {
    // A grandchild the lab did not start itself: only the namespace knows it.
    const shell = lab.spawn('a', 'sh', ['-c', 'sleep 600 & echo $!; wait'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    started.push(shell.pid!, Number(await firstLine(shell)));
    expect(started.every(isRunning)).toBe(true);

    await lab.close();
    const left = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => line === lab.id || line.startsWith(`${lab.id} `) || line.startsWith(`${lab.id}-`));
    expect(left).toEqual([]);
    expect(started.filter(isRunning)).toEqual([]);
    expect(server.signalCode).toBe('SIGKILL');
    await lab.close();
    expect(() => lab.spawn('a', 'true', [])).toThrow(/closed/);
  });
});

/** The first line child prints on stdout; rejects if it ends first. */
function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(out.split('\n')[0]!);
    });
    child.once('exit', (code, signal) =>
      reject(new Error(`it ended (${code ?? signal}) having printed ${out}`)),
    );
  });
}

/** Whether pid is a live process (a zombie is not: it has ended, only not been reaped). */
function isRunning(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
