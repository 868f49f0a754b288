import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DriverError } from '../driver.js';
import { isAlive, readPidFile, tailFile } from './instance-files.js';
import type { EngineContext } from './local-engine.js';

const PROXY_SCRIPT = fileURLToPath(new URL('./acl-proxy.mjs', import.meta.url));

/**
 * Kumo's source-address proxy (acl-proxy.mjs) for engines whose server listens only on a Unix
 * socket in the instance's run/ directory: it listens on the instance's port and forwards only
 * connections from addresses in the ACL. Its configuration is run/acl.json, its pid run/acl-proxy.pid,
 * its log log/acl-proxy.log. It runs detached from Kumo, as the service user.
 */

/** The proxy's configuration file: rendered with the engine's others, written by the driver. */
export function aclProxyConfig(
  ctx: EngineContext,
  socket: string,
  acl: readonly string[],
): { path: string; content: string } {
  const content = JSON.stringify(
    { listen: { host: ctx.listenHost, port: ctx.state.port }, target: { path: socket }, allow: acl },
    null,
    2,
  );
  return { path: join(ctx.paths.run, 'acl.json'), content };
}

export function aclProxyPid(ctx: EngineContext): Promise<number | undefined> {
  return readPidFile(join(ctx.paths.run, 'acl-proxy.pid'));
}

/**
 * Starts the proxy unless it runs, and waits until it listens. Idempotent. Throws DriverError
 * (StartFailed) when it exits or does not listen within `timeoutMs`.
 */
export async function startAclProxy(ctx: EngineContext, timeoutMs = 30_000): Promise<void> {
  if (isAlive(await aclProxyPid(ctx))) return;
  // A copy the service user can read wherever Kumo itself is installed.
  const script = join(ctx.templatesRoot, 'acl-proxy.mjs');
  await mkdir(ctx.templatesRoot, { recursive: true, mode: 0o711 });
  await copyFile(PROXY_SCRIPT, script);
  const logFile = join(ctx.paths.log, 'acl-proxy.log');
  const pid = await ctx.as.spawnDetached(process.execPath, [script, join(ctx.paths.run, 'acl.json')], {
    cwd: ctx.paths.run,
    logFile,
  });
  const deadline = Date.now() + timeoutMs;
  while ((await aclProxyPid(ctx)) !== pid) {
    if (!isAlive(pid))
      throw new DriverError('StartFailed', `the ACL proxy exited: ${(await tailFile(logFile, 3)).join(' ')}`);
    if (Date.now() > deadline)
      throw new DriverError('StartFailed', 'timed out waiting for the ACL proxy to listen.');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Makes a running proxy re-read its allow list (applied to new connections). No-op when it is not running. */
export async function reloadAclProxy(ctx: EngineContext): Promise<void> {
  const pid = await aclProxyPid(ctx);
  if (isAlive(pid)) process.kill(pid!, 'SIGHUP');
}

/** Stops the proxy (SIGTERM, then SIGKILL after `timeoutMs`); resolves once it is gone. Idempotent. */
export async function stopAclProxy(ctx: EngineContext, timeoutMs = 30_000): Promise<void> {
  await stopProcess(await aclProxyPid(ctx), timeoutMs);
}

/**
 * SIGTERM, then SIGKILL when it still runs after `timeoutMs`; resolves once it is gone (or was),
 * or 5 s after the SIGKILL.
 */
export async function stopProcess(pid: number | undefined, timeoutMs: number): Promise<void> {
  if (!isAlive(pid)) return;
  process.kill(pid!, 'SIGTERM');
  if (await gone(pid!, timeoutMs)) return;
  process.kill(pid!, 'SIGKILL');
  await gone(pid!, 5000);
}

async function gone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}
