/**
 * Schema evolution: the breaking changes between the last released schema (schema/released.graphql)
 * and the current one, checked against the list of changes allowed by the deprecation policy
 * (schema/changes.json; docs/api-conventions.md#schema-evolution). A client written against the
 * released schema must keep working unless a change is listed, and a listed removal must have been
 * deprecated for at least six months.
 */
import { CriticalityLevel, diff } from '@graphql-inspector/core';
import { buildSchema } from 'graphql';

/** How long a deprecated field, argument, enum value or type stays before it may be removed. */
export const DEPRECATION_MONTHS = 6;

/** One entry of schema/changes.json. */
export interface AllowedBreakingChange {
  /** The schema coordinate graphql-inspector reports, e.g. `Query.settlementWindows.city`. */
  path: string;
  /** graphql-inspector's change type, e.g. `FIELD_REMOVED`, `FIELD_ARGUMENT_TYPE_CHANGED`. */
  type: string;
  /** When the old form was deprecated (and announced), YYYY-MM-DD. */
  deprecatedOn: string;
  reason: string;
  /** Why it may not wait the six months (a security fix, a field that never worked); rare. */
  exception?: string;
}

export interface BreakingChange {
  path: string;
  type: string;
  message: string;
}

export interface EvolutionReport {
  /** Breaking changes the list allows. */
  allowed: BreakingChange[];
  /** Breaking changes to fix: not listed, or listed before their six months are over. */
  refused: (BreakingChange & { why: string })[];
}

/** The breaking changes from `released` to `current` (SDL texts). */
export async function breakingChanges(released: string, current: string): Promise<BreakingChange[]> {
  const changes = await diff(buildSchema(released), buildSchema(current));
  return changes
    .filter((c) => c.criticality.level === CriticalityLevel.Breaking)
    .map((c) => ({ path: c.path ?? '', type: c.type, message: c.message }));
}

/** The earliest day a change deprecated on `deprecatedOn` may ship. */
export function removableFrom(deprecatedOn: string): Date {
  const day = new Date(`${deprecatedOn}T00:00:00Z`);
  if (!/^\d{4}-\d{2}-\d{2}$/.test(deprecatedOn) || Number.isNaN(day.getTime())) throw new Error(`schema/changes.json: deprecatedOn must be a date YYYY-MM-DD, got ${JSON.stringify(deprecatedOn)}`);
  day.setUTCMonth(day.getUTCMonth() + DEPRECATION_MONTHS);
  return day;
}

/** Sorts the breaking changes into allowed and refused, by the list and the policy, as of `now`. */
export async function checkSchemaEvolution(input: { released: string; current: string; allowed: AllowedBreakingChange[]; now?: Date }): Promise<EvolutionReport> {
  const now = input.now ?? new Date();
  const report: EvolutionReport = { allowed: [], refused: [] };
  for (const change of await breakingChanges(input.released, input.current)) {
    const listed = input.allowed.find((a) => a.path === change.path && a.type === change.type);
    if (!listed) {
      report.refused.push({ ...change, why: 'not listed in schema/changes.json: deprecate it first (docs/api-conventions.md#schema-evolution)' });
      continue;
    }
    if (!listed.reason?.trim()) {
      report.refused.push({ ...change, why: 'listed without a reason' });
      continue;
    }
    const from = removableFrom(listed.deprecatedOn);
    if (now < from && !listed.exception?.trim()) {
      report.refused.push({ ...change, why: `deprecated on ${listed.deprecatedOn}: it may ship from ${from.toISOString().slice(0, 10)} (${DEPRECATION_MONTHS} months)` });
      continue;
    }
    report.allowed.push(change);
  }
  return report;
}
