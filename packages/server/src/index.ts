export { resolveConfig, type KumoConfig, type UpOptions } from './config.js';
export { Kumo } from './kumo.js';
export { runUp } from './up.js';
export { createLogger } from './logger.js';
export { runAgent, runServer } from './run-distributed.js';
