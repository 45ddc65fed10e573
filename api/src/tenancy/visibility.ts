import { type FilterQuery, raw } from '@mikro-orm/core';
import type { Principal } from '../auth/principal.js';
import type { Biller } from './biller.entity.js';
import type { CardCompany, City } from './city.entity.js';
import type { FeePlan } from './fee-plan.entity.js';
import { type Merchant, TenantStatus } from './merchant.entity.js';

/**
 * Who may see which tenancy rows (DESIGN.md §5), as the WHERE conditions of the query that reads
 * them: ownership is enforced by the database query, never by filtering rows afterwards. `null`
 * means the principal sees no row of the type, and the caller does not query at all.
 *
 * | principal      | cities | card companies       | merchants   | billers                 | fee plans        |
 * | -------------- | ------ | -------------------- | ----------- | ----------------------- | ---------------- |
 * | anyone         | all    | none                 | none        | none                    | none             |
 * | OPERATOR       | all    | all                  | all         | all                     | all              |
 * | ISSUER         | all    | its own              | of its city | of its city             | none             |
 * | MERCHANT       | all    | none                 | itself      | none                    | the one it is on |
 * | BILLER         | all    | none                 | none        | itself                  | the one it is on |
 * | CARDHOLDER_APP | all    | the one that runs it | none        | ACTIVE ones (directory) | none             |
 *
 * Cities are a public directory (code, name, time zone, currency): where the platform runs, and
 * the codes other fields take as arguments. No token is needed to read them (docs/tenancy.md).
 * A principal's `tenantId` is its merchant's, biller's or card company's id (for an app: the card
 * company that runs it); one that is not a uuid owns nothing.
 */
type Scope<T> = FilterQuery<T> | null;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function tenantOf(principal: Principal): string | null {
  return principal.tenantId && UUID.test(principal.tenantId) ? principal.tenantId : null;
}

/** The issuer's city, as a subquery: `city_id = (select ...)` matches nothing for an unknown issuer. */
function cityOfIssuer(cardCompanyId: string) {
  return raw('(select cc.city_id from card_company cc where cc.id = ?)', [cardCompanyId]);
}

export function citiesVisibleTo(_principal: Principal | null): Scope<City> {
  return {};
}

export function cardCompaniesVisibleTo(principal: Principal | null): Scope<CardCompany> {
  if (principal?.kind === 'OPERATOR') return {};
  const tenant = principal && tenantOf(principal);
  if (!tenant) return null;
  return principal.kind === 'ISSUER' || principal.kind === 'CARDHOLDER_APP' ? { id: tenant } : null;
}

export function merchantsVisibleTo(principal: Principal | null): Scope<Merchant> {
  if (principal?.kind === 'OPERATOR') return {};
  const tenant = principal && tenantOf(principal);
  if (!tenant) return null;
  if (principal.kind === 'MERCHANT') return { id: tenant };
  if (principal.kind === 'ISSUER') return { city: cityOfIssuer(tenant) };
  return null;
}

export function billersVisibleTo(principal: Principal | null): Scope<Biller> {
  if (principal?.kind === 'OPERATOR') return {};
  // The public directory an app shows its cardholder: billers that can be paid now.
  if (principal?.kind === 'CARDHOLDER_APP') return { status: TenantStatus.ACTIVE };
  const tenant = principal && tenantOf(principal);
  if (!tenant) return null;
  if (principal.kind === 'BILLER') return { id: tenant };
  if (principal.kind === 'ISSUER') return { city: cityOfIssuer(tenant) };
  return null;
}

export function feePlansVisibleTo(principal: Principal | null): Scope<FeePlan> {
  if (principal?.kind === 'OPERATOR') return {};
  const tenant = principal && tenantOf(principal);
  if (!tenant) return null;
  // A merchant or biller sees the terms it is charged, and no other plan.
  if (principal.kind === 'MERCHANT') return { id: raw('(select m.fee_plan_id from merchant m where m.id = ?)', [tenant]) };
  if (principal.kind === 'BILLER') return { id: raw('(select b.fee_plan_id from biller b where b.id = ?)', [tenant]) };
  return null;
}
