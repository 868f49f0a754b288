import { z } from 'zod';
import { nameSchema } from './meta.js';

/** The roles a member of an org can have, most rights first (docs/iam.md has what each may do). */
export const MEMBER_ROLES = ['owner', 'admin', 'developer', 'viewer', 'billing'] as const;
export type MemberRole = (typeof MEMBER_ROLES)[number];

/** The most a token may do: a member role, or operator (operators' tokens only). */
export const TOKEN_ROLES = ['operator', ...MEMBER_ROLES] as const;
export type TokenRole = (typeof TOKEN_ROLES)[number];

export const memberProjectsSchema = z.array(nameSchema).min(1).max(100).nullable().optional().meta({
  description: 'Limit the role to these projects of the org; leave out (or null) for the whole org.',
});

/** A membership as PUT /v1/orgs/{org}/members/{user} takes it. */
export const memberPutSchema = z
  .strictObject({ role: z.enum(MEMBER_ROLES), projects: memberProjectsSchema })
  .meta({ id: 'MemberPut' });

/** A token as POST /v1/tokens takes it. */
export const tokenCreateSchema = z
  .strictObject({
    name: z.string().min(1).max(100).meta({ description: 'What the token is for, e.g. "ci-deploy".' }),
    expiresInDays: z
      .number()
      .int()
      .min(1)
      .max(3650)
      .optional()
      .meta({ description: 'Default: never expires.' }),
    role: z.enum(TOKEN_ROLES).optional().meta({
      description:
        "The most the token may do; no higher than the creator's own. Default: the creator's role.",
    }),
    service: z.boolean().optional().meta({
      description: 'A service token of `org` (not of a person): it keeps working when its creator leaves.',
    }),
    org: nameSchema
      .optional()
      .meta({ description: 'Required for service tokens; limits a personal token to one org.' }),
    projects: z
      .array(nameSchema)
      .min(1)
      .max(100)
      .optional()
      .meta({ description: 'Limits the token to these projects of `org`.' }),
    user: nameSchema.optional().meta({
      description:
        'Operators only: create a personal token for this user (e.g. their first one), to hand over.',
    }),
  })
  .meta({ id: 'TokenCreate' });
