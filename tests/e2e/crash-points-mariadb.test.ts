import { runCrashSuite } from '../support/crash-harness.js';
import { CRASH_POINTS, mariadbScenarios } from '../support/crash-scenarios.js';

// The crash-point suite of MariaDB's own steps (see crash-points-databases.test.ts for the shared ones).
// One point of a scenario alone:
// KUMO_CRASH_ONLY=<point>#<hit> npx vitest run tests/e2e/crash-points-mariadb.test.ts -t '<scenario>'
runCrashSuite(mariadbScenarios, CRASH_POINTS.mariadb, '32701-32709');
