import { type FieldError, KINDS } from '@kumo/api';
import { privateHost } from './receiver-address.js';

/**
 * What a Webhook's schema cannot say: that the kinds it names exist, and (unless private
 * receivers are allowed) that its URL does not name a private address or localhost.
 */
export function webhookSpecCheck(allowPrivate: boolean) {
  return (spec: Record<string, unknown>): FieldError[] => [
    ...urlErrors(spec, allowPrivate),
    ...kindErrors(spec),
  ];
}

function urlErrors(spec: Record<string, unknown>, allowPrivate: boolean): FieldError[] {
  const host = allowPrivate || typeof spec.url !== 'string' ? undefined : privateHost(spec.url);
  return host
    ? [
        {
          field: 'spec.url',
          message: `${host} is a private address; receivers must be reachable on the internet`,
        },
      ]
    : [];
}

function kindErrors(spec: Record<string, unknown>): FieldError[] {
  const kinds = (spec.kinds as string[] | undefined) ?? [];
  return kinds
    .map((kind, i) => ({ kind, i }))
    .filter(({ kind }) => !KINDS.some((k) => k.kind === kind))
    .map(({ kind, i }) => ({
      field: `spec.kinds.${i}`,
      message: `"${kind}" is not a kind; use one of ${KINDS.map((k) => k.kind).join(', ')}`,
    }));
}
