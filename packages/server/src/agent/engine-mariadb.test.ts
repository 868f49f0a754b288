import { runEngineSuite } from '../testing/engine-suite.js';
import { mariadbProbe } from '../testing/engine-probes/mariadb.js';

// The shared engine suite against real MariaDB servers (mariadbd) and Kumo's ACL proxy.
runEngineSuite(mariadbProbe, 'mysuite');
