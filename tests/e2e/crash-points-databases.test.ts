import { runCrashSuite } from '../support/crash-harness.js';
import { CRASH_POINTS, databaseScenarios } from '../support/crash-scenarios.js';

// The crash-point suite (faults/crash-points.ts): each scenario's operation is traced once, then
// Kumo is killed (SIGKILL) at every crash point it reached, in turn, restarted, and checked to
// converge with nothing lost, duplicated or left behind. One point of a scenario alone:
// KUMO_CRASH_ONLY=<point>#<hit> npx vitest run tests/e2e/crash-points-databases.test.ts -t '<scenario>'
runCrashSuite(databaseScenarios, CRASH_POINTS.databases, '32710-32729');
