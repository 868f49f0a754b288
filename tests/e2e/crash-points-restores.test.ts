import { runCrashSuite } from '../support/crash-harness.js';
import { CRASH_POINTS, restoreScenarios } from '../support/crash-scenarios.js';

// The crash-point suite of verifications, in-place restores and forks (see crash-points-backups.test.ts).
// One point of a scenario alone:
// KUMO_CRASH_ONLY=<point>#<hit> npx vitest run tests/e2e/crash-points-restores.test.ts -t '<scenario>'
runCrashSuite(restoreScenarios, CRASH_POINTS.restores, '32590-32599');
