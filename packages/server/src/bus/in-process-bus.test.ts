import { createLogger } from '../logger.js';
import { runBusContract } from './bus-contract.js';
import { InProcessBus } from './in-process-bus.js';

runBusContract('in-process', async () => new InProcessBus(createLogger('silent'), { retryDelayMs: 5 }));
