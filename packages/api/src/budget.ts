import { z } from 'zod';

/** The condition a budget is shown by, on the org or project that has it. */
export const WITHIN_BUDGET = 'WithinBudget';

export const DEFAULT_BUDGET_THRESHOLDS = [50, 80, 100] as const;

export const budgetSchema = z
  .strictObject({
    amount: z
      .string()
      .regex(/^\d{1,12}(\.\d{1,3})?$/, { message: 'must be a decimal such as "500.00"' })
      .refine((a) => /[1-9]/.test(a), { message: 'must be more than 0' })
      .meta({
        description:
          'The budget for a month (in the org’s time zone), in the price book’s currency, e.g. "500.00".',
        example: '500.00',
      }),
    thresholds: z
      .array(z.number().int().min(1).max(1000))
      .min(1)
      .max(20)
      .refine((list) => list.every((t, i) => i === 0 || t > list[i - 1]!), {
        message: 'must be sorted from low to high, each once',
      })
      .default([...DEFAULT_BUDGET_THRESHOLDS])
      .meta({
        description:
          'Percentages of amount (1–1000, ascending) whose crossing in a month raises a BudgetThresholdCrossed event; default [50, 80, 100].',
      }),
  })
  .meta({
    id: 'Budget',
    description:
      'A monthly budget: the month-to-date cost is checked against it every 5 minutes and shown as the WithinBudget condition and status.budget (docs/billing.md).',
  });
export type Budget = z.infer<typeof budgetSchema>;

export const budgetStatusSchema = z
  .strictObject({
    month: z.string().meta({ description: 'YYYY-MM in the org’s time zone.' }),
    amount: z.string().meta({ description: 'The budget it was checked against (spec.budget.amount).' }),
    percent: z
      .number()
      .int()
      .meta({ description: 'Month-to-date cost as a percentage of the budget, rounded down.' }),
    crossed: z.number().int().meta({ description: 'The highest threshold crossed this month; 0 for none.' }),
    forecastPercent: z
      .number()
      .int()
      .meta({ description: 'The month’s forecast cost as a percentage of the budget, rounded down.' }),
  })
  .meta({ id: 'BudgetStatus', description: 'The budget as last checked.' });
export type BudgetStatus = z.infer<typeof budgetStatusSchema>;
