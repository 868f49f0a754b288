import { type IncomingMessage, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { publicOnlyLookup, privateHost } from './receiver-address.js';

/** What a receiver answered: its status and the start of its body. */
export interface ReceiverAnswer {
  status: number;
  text: string;
}

const KEPT_ANSWER_CHARS = 1000;

/**
 * POSTs one delivery. Resolves with the receiver's answer (any status; redirects are not followed),
 * rejects when there is none: a refused or failed connection, no complete answer within
 * `timeoutMs` (Error name TimeoutError), or — unless `allowPrivate` — a receiver at a private address.
 */
export function postToReceiver(
  url: string,
  headers: Record<string, string>,
  body: string,
  options: { timeoutMs: number; allowPrivate: boolean },
): Promise<ReceiverAnswer> {
  const literal = options.allowPrivate ? undefined : privateHost(url);
  if (literal) return Promise.reject(new Error(`${literal} is a private address`));
  const target = new URL(url);
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      req.destroy(Object.assign(new Error('timeout'), { name: 'TimeoutError' }));
    }, options.timeoutMs);
    const req = send(
      target,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        ...(options.allowPrivate ? {} : { lookup: publicOnlyLookup }),
      },
      (res: IncomingMessage) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (text.length < KEPT_ANSWER_CHARS) text += chunk;
        });
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, text: text.slice(0, KEPT_ANSWER_CHARS) });
        });
        res.on('error', reject);
      },
    );
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(body);
  });
}
