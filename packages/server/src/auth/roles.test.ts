import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROLE_PERMISSIONS, isWithin, permissionTableMarkdown } from './roles.js';

describe('the permission table', () => {
  it('orders the member roles owner ⊇ admin ⊇ developer ⊇ viewer, with billing apart', () => {
    const r = ROLE_PERMISSIONS;
    expect(isWithin(r.admin, r.owner) && !isWithin(r.owner, r.admin)).toBe(true);
    expect(isWithin(r.developer, r.admin) && !isWithin(r.admin, r.developer)).toBe(true);
    expect(isWithin(r.viewer, r.developer) && !isWithin(r.developer, r.viewer)).toBe(true);
    expect(isWithin(r.billing, r.admin)).toBe(true);
    expect(isWithin(r.billing, r.developer)).toBe(false); // invoices
    expect(r.billing.has('resources.read')).toBe(false);
    expect(r.viewer.has('credentials.read')).toBe(false);
  });

  it('is documented exactly as enforced (docs/iam.md)', async () => {
    const doc = await readFile(join(import.meta.dirname, '../../../../docs/iam.md'), 'utf8');
    // Compared cell by cell: Prettier pads the Markdown table.
    expect(tableRows(doc)).toContain(tableRows(permissionTableMarkdown()));
  });
});

function tableRows(markdown: string): string {
  return markdown
    .split('\n')
    .filter((line) => line.startsWith('|') && !/^\|[-:| ]+\|$/.test(line))
    .map((line) =>
      line
        .split('|')
        .map((cell) => cell.trim())
        .join('|'),
    )
    .join('\n');
}
