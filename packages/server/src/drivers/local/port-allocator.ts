import { createServer } from 'node:net';
import { DriverError } from '../driver.js';

/**
 * Hands out ports from a range: the lowest one that no instance holds and that can be bound now.
 * Callers serialise allocation (one allocator per driver, guarded by the driver's lock).
 */
export async function allocatePort(
  range: readonly [number, number],
  taken: ReadonlySet<number>,
  host: string,
): Promise<number> {
  for (let port = range[0]; port <= range[1]; port++) {
    if (taken.has(port)) continue;
    if (await canBind(host, port)) return port;
  }
  throw new DriverError(
    'PortsExhausted',
    `No free port in the range ${range[0]}-${range[1]}: every port is taken. Delete unused databases or widen the port range.`,
  );
}

function canBind(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}
