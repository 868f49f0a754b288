import { runEngineSuite } from '../testing/engine-suite.js';
import { postgresProbe } from '../testing/engine-probes/postgres.js';

// The shared engine suite against real PostgreSQL servers (what only PostgreSQL does:
// database-lifecycle.test.ts).
runEngineSuite(postgresProbe, 'pgsuite');
