import { Socket } from 'node:net';

/**
 * Sends Redis commands over TCP from a chosen local source address and returns the raw RESP
 * replies (e.g. "+OK", "$1\r\nv", "-WRONGPASS …"). Resolves "" when the connection is closed
 * without an answer (what Kumo's ACL proxy does to a refused address).
 */
export function redisFrom(port: number, sourceAddress: string, commands: string[][]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    let out = '';
    const timer = setTimeout(() => socket.destroy(), 5000);
    socket.on('data', (d: Buffer) => (out += d.toString()));
    socket.on('error', (err) => {
      clearTimeout(timer);
      if ((err as NodeJS.ErrnoException).code === 'ECONNRESET') resolve(out);
      else reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    socket.connect({ host: '127.0.0.1', port, localAddress: sourceAddress }, () => {
      const encode = (args: string[]) =>
        `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
      socket.write([...commands, ['QUIT']].map(encode).join(''));
    });
  });
}
