import type { SeedStep } from '../demo/seed-step.js';
import { toGlobalId } from '../graphql/global-id.js';
import { BillerKind } from './biller.entity.js';
import { createBiller, createCity, createFeePlan, createMerchant } from './tenancy.service.js';

/** Two cities with their card companies, two fee plans, a merchant and two utilities to try the platform with. */
export const tenancyDemo: SeedStep = {
  name: 'tenancy-demo',
  async run(em) {
    const gz = await createCity(em, { code: 'GZ', name: '广州 Guangzhou', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: '广州羊城通 Guangzhou Yangchengtong' });
    const sz = await createCity(em, { code: 'SZ', name: '深圳 Shenzhen', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: '深圳通 Shenzhen Tong' });
    const standard = await createFeePlan(em, { name: 'Standard merchant 0.60%', basisPoints: 60, fixedFee: 0n, minimumFee: 1n, currency: 'CNY' });
    const utility = await createFeePlan(em, { name: 'Utility 0.20% min 0.10', basisPoints: 20, fixedFee: 0n, minimumFee: 10n, currency: 'CNY' });
    const shop = await createMerchant(em, { cityId: gz.city.id, name: 'Demo Shop', feePlanId: standard.id });
    const water = await createBiller(em, { cityId: gz.city.id, name: 'Guangzhou Water', kind: BillerKind.WATER, feePlanId: utility.id });
    const gas = await createBiller(em, { cityId: sz.city.id, name: 'Shenzhen Gas', kind: BillerKind.GAS, feePlanId: utility.id });
    return {
      tenants: {
        cities: { GZ: toGlobalId('City', gz.city.id), SZ: toGlobalId('City', sz.city.id) },
        cardCompanies: { GZ: toGlobalId('CardCompany', gz.cardCompany.id), SZ: toGlobalId('CardCompany', sz.cardCompany.id) },
        merchant: toGlobalId('Merchant', shop.id),
        billers: { water: toGlobalId('Biller', water.id), gas: toGlobalId('Biller', gas.id) },
        feePlans: { standardMerchant: toGlobalId('FeePlan', standard.id), utility: toGlobalId('FeePlan', utility.id) },
      },
    };
  },
};
