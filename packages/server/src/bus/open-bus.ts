import type { KumoConfig } from '../config.js';
import { SetupError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Bus } from './bus.js';
import { InProcessBus } from './in-process-bus.js';
import { NatsBus, type NatsConsumerOptions } from './nats-bus.js';

/**
 * The configured bus: NATS JetStream when KUMO_NATS_URL is set, read through `consumer`; else the
 * in-process bus (one process: everything that publishes and consumes lives in it).
 */
export async function openBus(
  config: KumoConfig,
  logger: Logger,
  consumer: NatsConsumerOptions,
): Promise<Bus> {
  if (config.bus.kind === 'in-process') return new InProcessBus(logger);
  try {
    return await NatsBus.connect({ url: config.bus.url, logger, consumer });
  } catch (err) {
    throw new SetupError(
      `Cannot reach NATS JetStream at ${config.bus.url.replace(/\/\/[^@/]*@/g, '//')} (${(err as Error).message}). Start it (nats-server -js), or check KUMO_NATS_URL.`,
    );
  }
}
