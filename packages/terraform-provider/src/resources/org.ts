import { orgKind } from '@kumo/api';
import { kindResource } from '../kind-resource.js';

export const orgResource = kindResource({
  typeName: 'kumo_org',
  kind: orgKind,
  description: 'An organisation: a customer of the platform, owner of projects (operators only).',
  waits: false,
  computed: [{ name: 'uid', type: 'string', computed: true, stable: true, read: (r) => r.metadata.uid }],
});
