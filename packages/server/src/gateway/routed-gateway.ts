import { Readable } from 'node:stream';
import type { Resource } from '@kumo/api';
import { NotFoundError, TargetUnreachableError } from '../errors.js';
import type { LeaseStore } from '../store/target-leases.js';
import type { HostGateway, LocalHost } from './host-gateway.js';

/** An agent in this process, and whether it holds its target's lease now. */
export interface InProcessAgent {
  readonly active: boolean;
  readonly host: LocalHost;
}

const CONNECT_TIMEOUT_MS = 10_000;

/**
 * The control plane's gateway to hosts: a target whose agent runs in this process (`kumo up`) and
 * holds the lease is asked directly; any other target through the gateway endpoint its agent
 * registered with its lease (URL and secret). No lease, or no answer: 503 target unreachable.
 */
export class RoutedGateway implements HostGateway {
  constructor(
    private readonly leases: LeaseStore,
    private readonly inProcess: ReadonlyMap<string, InProcessAgent> = new Map(),
  ) {}

  async logs(target: string, uid: string, tail: number): Promise<string[]> {
    const local = this.local(target);
    if (local) return local.logs(uid, tail);
    const text = await (await this.fetch(target, `/logs/${encodeURIComponent(uid)}?tail=${tail}`)).text();
    return text === '' ? [] : text.replace(/\n$/, '').split('\n');
  }

  async followLogs(
    target: string,
    uid: string,
    onLine: (line: string) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const local = this.local(target);
    if (local) return local.followLogs(uid, onLine, signal);
    const response = await this.fetch(target, `/logs/${encodeURIComponent(uid)}?tail=0&follow=true`, signal);
    let rest = '';
    try {
      for await (const chunk of Readable.fromWeb(response.body! as never) as AsyncIterable<Buffer>) {
        const lines = (rest + chunk.toString('utf8')).split('\n');
        rest = lines.pop() ?? '';
        for (const line of lines) onLine(line);
      }
    } catch (err) {
      if (!signal.aborted) throw err;
    }
  }

  async openBackup(target: string, backup: Resource): Promise<Readable> {
    const local = this.local(target);
    if (local) return local.openBackup(backup);
    const path = `/backups/${encodeURIComponent(backup.metadata.project ?? '')}/${encodeURIComponent(backup.metadata.name)}`;
    return Readable.fromWeb((await this.fetch(target, path)).body! as never);
  }

  private local(target: string): LocalHost | undefined {
    const agent = this.inProcess.get(target);
    return agent?.active ? agent.host : undefined;
  }

  private async fetch(target: string, path: string, signal?: AbortSignal): Promise<Response> {
    const gateway = await this.leases.gateway(target);
    if (!gateway) {
      throw new TargetUnreachableError(
        `Target ${target} has no agent serving it now (or its agent has no gateway endpoint); try again when it is back (kumo target get ${target}).`,
      );
    }
    // The timeout is for the answer to begin; a followed log or a large backup may stream for long.
    const abort = new AbortController();
    const onAbort = () => abort.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(onAbort, CONNECT_TIMEOUT_MS);
    let response: Response;
    try {
      response = await fetch(`${gateway.url}${path}`, {
        headers: { authorization: `Bearer ${gateway.secret}` },
        signal: abort.signal,
      });
    } catch (err) {
      throw new TargetUnreachableError(
        `The agent of target ${target} did not answer at its gateway (${(err as Error).message}); try again shortly.`,
      );
    } finally {
      clearTimeout(timer);
    }
    if (response.status === 404) throw new NotFoundError((await response.text()).slice(0, 300));
    if (!response.ok) {
      const detail = await response.text().catch(() => '');
      throw new TargetUnreachableError(
        `The agent of target ${target} answered ${response.status}: ${detail.slice(0, 300)}`,
      );
    }
    return response;
  }
}
