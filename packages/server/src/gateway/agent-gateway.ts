import { timingSafeEqual, createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { type ServerType, serve } from '@hono/node-server';
import { Hono } from 'hono';
import { stream } from 'hono/streaming';
import type { AgentClient } from '../agent/agent-client.js';
import type { BackupRunner } from '../agent/backup-runner.js';
import type { RuntimeDriver } from '../drivers/driver.js';
import { NotFoundError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { LocalHost } from './host-gateway.js';

/** The host side of the gateway for one agent: its driver's logs and its backups' objects. */
export function localHost(driver: RuntimeDriver, backups: BackupRunner | undefined): LocalHost {
  return {
    logs: (uid, tail) => driver.logs(uid, tail),
    followLogs: (uid, onLine, signal) => driver.followLogs(uid, onLine, signal),
    openBackup: async (backup) => {
      if (!backups) throw new NotFoundError('This agent has no object store: it keeps no backups.');
      return backups.open(backup);
    },
  };
}

export interface AgentGatewayOptions {
  host: LocalHost;
  client: AgentClient;
  /** The secret the control plane presents (registered with the lease, sealed in the store). */
  secret: string;
  listenHost: string;
  port: number;
  logger: Logger;
}

/**
 * The agent's own endpoint for what only its host can answer, called by the control plane's
 * RoutedGateway with the secret this agent registered with its lease. Backups are looked up
 * through the agent contract, so only those of its target are served.
 */
export class AgentGateway {
  private constructor(
    private readonly server: ServerType,
    readonly url: string,
  ) {}

  static async start(options: AgentGatewayOptions): Promise<AgentGateway> {
    const app = new Hono();
    const expected = digest(options.secret);
    app.use('*', async (c, next) => {
      const token = c.req.header('authorization')?.match(/^Bearer\s+(\S+)$/i)?.[1];
      if (!token || !timingSafeEqual(digest(token), expected)) return c.text('unauthenticated', 401);
      await next();
    });
    app.get('/logs/:uid', async (c) => {
      const uid = c.req.param('uid');
      const tail = Math.min(Math.max(Number(c.req.query('tail') ?? 100) || 0, 0), 10_000);
      const lines = await options.host.logs(uid, tail);
      if (c.req.query('follow') !== 'true') return c.text(lines.map((l) => l + '\n').join(''));
      c.header('content-type', 'text/plain; charset=utf-8');
      return stream(c, async (s) => {
        for (const line of lines) await s.write(line + '\n');
        const abort = new AbortController();
        s.onAbort(() => abort.abort());
        await options.host.followLogs(uid, (line) => void s.write(line + '\n'), abort.signal);
      });
    });
    app.get('/backups/:project/:name', async (c) => {
      const backup = await options.client.get({
        kind: 'Backup',
        project: c.req.param('project'),
        name: c.req.param('name'),
      });
      if (!backup) return c.text('no such backup on this target', 404);
      const body = await options.host.openBackup(backup);
      return new Response(Readable.toWeb(body) as ReadableStream, {
        headers: { 'content-type': 'application/octet-stream' },
      });
    });
    app.onError((err, c) => {
      if (err instanceof NotFoundError) return c.text(err.message, 404);
      options.logger.warn({ err: String(err) }, 'gateway request failed');
      return c.text('the agent could not answer', 500);
    });
    const server = await new Promise<ServerType>((resolve, reject) => {
      const s = serve({ fetch: app.fetch, hostname: options.listenHost, port: options.port }, () =>
        resolve(s),
      );
      s.once('error', reject);
    });
    const address = server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return new AgentGateway(server, `http://${host}:${address.port}`);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      (this.server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
    });
  }
}

/** Fixed-length digests, so comparing them takes the same time whatever the token. */
function digest(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}
