import { runEngineSuite } from '../testing/engine-suite.js';
import { redisProbe } from '../testing/engine-probes/redis.js';

// The shared engine suite against real Redis servers and Kumo's ACL proxy.
runEngineSuite(redisProbe, 'rdsuite');
