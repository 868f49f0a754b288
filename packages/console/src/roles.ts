/** The member roles, most rights first (the API's docs/iam.md table). */
export const ROLES = ['owner', 'admin', 'developer', 'viewer', 'billing'];
