import { projectKind } from '@kumo/api';
import { kindResource } from '../kind-resource.js';

export const projectResource = kindResource({
  typeName: 'kumo_project',
  kind: projectKind,
  description: 'A project of an org: what databases and backups belong to.',
  waits: false,
  computed: [{ name: 'uid', type: 'string', computed: true, stable: true, read: (r) => r.metadata.uid }],
});
