import { type ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import { within } from './bench-kit.js';
import type { AgentReply, AgentRequest } from './noop-agent.js';

export interface AgentProcess {
  target: string;
  pid: number;
  /** Its reconciles so far (of Databases), by result: success, requeue, error, terminal. */
  counts: () => Promise<Record<string, number>>;
  /** Stops it cleanly (SIGKILL after 20 s). Idempotent. */
  stop: () => Promise<void>;
}

/**
 * Forks noop-agent.ts: the agent of `target`, with the no-op driver, in its own process (as a
 * remote agent runs), talking to the control plane at apiUrl and reading NATS. Resolves once it
 * holds the target's lease; rejects if it exits or is not serving within 60 s.
 */
export async function startAgentProcess(options: {
  target: string;
  apiUrl: string;
  token: string;
  natsUrl: string;
}): Promise<AgentProcess> {
  const child: ChildProcess = fork(join(import.meta.dirname, 'noop-agent.ts'), [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: {
      ...process.env,
      BENCH_AGENT_TARGET: options.target,
      BENCH_AGENT_API: options.apiUrl,
      BENCH_AGENT_TOKEN: options.token,
      BENCH_AGENT_NATS: options.natsUrl,
    },
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  let stopping = false;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', (code, signal) => {
    process.off('exit', killOnExit);
    if (!stopping)
      console.error(`agent of ${options.target} exited unexpectedly: code ${code}, signal ${signal}`);
  });
  const next = (type: AgentReply['type'], what: string, ms: number) =>
    within(
      ms,
      what,
      new Promise<AgentReply>((resolve, reject) => {
        const onMessage = (reply: AgentReply) => {
          if (reply.type !== type) return;
          child.off('message', onMessage);
          child.off('exit', onExit);
          resolve(reply);
        };
        const onExit = () => reject(new Error(`${what}: the agent exited`));
        child.on('message', onMessage);
        child.once('exit', onExit);
      }),
    );
  try {
    await next('ready', `the agent of ${options.target} to start`, 60_000);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  const ask = (request: AgentRequest) => child.send(request);
  return {
    target: options.target,
    pid: child.pid!,
    counts: async () => {
      const reply = next('count', `the reconcile counts of the agent of ${options.target}`, 10_000);
      ask({ type: 'count' });
      return ((await reply) as Extract<AgentReply, { type: 'count' }>).counts;
    },
    stop: async () => {
      if (stopping) return;
      stopping = true;
      if (child.connected) ask({ type: 'stop' });
      await within(20_000, `the agent of ${options.target} to stop`, exited).catch(async (err: unknown) => {
        console.error(String(err));
        child.kill('SIGKILL');
        await exited;
      });
    },
  };
}
