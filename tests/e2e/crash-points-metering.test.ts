import { runCrashSuite } from '../support/crash-harness.js';
import { CRASH_POINTS, meteringScenarios } from '../support/crash-scenarios.js';

// The crash-point suite of metering: the agent is killed while it saves or sends its usage, and
// after a restart its usage is reported again and counted once (docs/billing.md).
// One point alone: KUMO_CRASH_ONLY=<point>#<hit> npx vitest run tests/e2e/crash-points-metering.test.ts
runCrashSuite(meteringScenarios, CRASH_POINTS.metering, '32560-32569');
