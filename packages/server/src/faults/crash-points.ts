import { appendFileSync } from 'node:fs';

/**
 * Named places in the steps that change something outside the store (files, processes, server
 * roles, object store writes) where a test can make this process die as a `kill -9` would. The
 * fault-injection suite (tests/e2e/crash-points.test.ts) kills Kumo at each point in turn and
 * checks that everything converges after a restart. Off unless the test-only settings
 * KUMO_TEST_CRASH_AT / KUMO_TEST_CRASH_TRACE are given; then `reach()` is synchronous and cheap.
 */
export interface CrashPoints {
  /** Marks that `point` was reached: records it when tracing, and dies here when armed for it. */
  reach(point: string): void;
}

/** What the test-only settings ask for (config.ts parses them once). */
export interface CrashPointSettings {
  /** Die (SIGKILL, nothing flushed) at this point's `hit`-th arrival (1-based). */
  crashAt?: { point: string; hit: number };
  /** Append every point reached, one name a line, to this file. */
  traceFile?: string;
}

/** The crash points of a process; `reach()` does nothing when no setting is given. */
export function crashPoints(settings: CrashPointSettings): CrashPoints {
  const { crashAt, traceFile } = settings;
  if (!crashAt && !traceFile) return { reach: () => undefined };
  let hits = 0;
  return {
    reach(point) {
      if (traceFile) appendFileSync(traceFile, point + '\n');
      if (crashAt?.point === point && ++hits === crashAt.hit) process.kill(process.pid, 'SIGKILL');
    },
  };
}

/** For code built without a configuration (tests of a single part): never crashes, traces nothing. */
export const NO_CRASH_POINTS: CrashPoints = { reach: () => undefined };
