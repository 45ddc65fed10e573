import 'reflect-metadata';
import { type GraphQLSchema, lexicographicSortSchema, printSchema } from 'graphql';
import { buildSchema } from 'type-graphql';
import { AuthResolver } from './auth/auth.resolver.js';
import { CardResolver } from './cards/cards.resolver.js';
import { PkiResolver } from './pki/pki.resolver.js';
import { MasterKeyResolver } from './readers/keys/master-keys.resolver.js';
import { CardProfileResolver } from './cards/card-profiles.resolver.js';
import { ReaderResolver } from './readers/readers.resolver.js';
import { PsamProvisioningResolver } from './readers/terminals/psam-provisioning.resolver.js';
import { CardSessionResolver } from './readers/session/card-session.resolver.js';
import { JournalEntryResolver, LedgerAccountResolver, PostingResolver } from './ledger/ledger.resolver.js';
import { BillerResolver, CardCompanyResolver, CityResolver, FeePlanResolver, MerchantResolver } from './tenancy/tenancy.resolver.js';
import { authChecker } from './graphql/auth-checker.js';
import { CardTopUpsResolver, TopUpResolver } from './topups/topups.resolver.js';
import { CardPendingLoadsResolver } from './topups/load-pickup.resolver.js';
import { PendingLoadListResolver } from './topups/pending-load-list.resolver.js';
import { PaymentResolver } from './payments/payments.resolver.js';
import { BillPaymentResolver, BillPaymentsOfBillResolver } from './bills/bill-payments.resolver.js';
import { BillResolver } from './bills/bills.resolver.js';
import { RootResolver } from './graphql/root.resolver.js';
import { OfflineUploadResolver } from './settlement/offline-upload.resolver.js';
import { ReconciliationResolver } from './settlement/reconciliation.resolver.js';
import { SettlementBatchResolver, SettlementLineResolver, SettlementResolver } from './settlement/settlement.resolver.js';
import { EventResolver, WebhookDeliveryResolver, WebhookEndpointResolver } from './webhooks/webhooks.resolver.js';
import { AnalyticsResolver } from './analytics/analytics.resolver.js';
import { QrRideResolver } from './wallets/qr.resolver.js';
import { TransitWalletResolver, WalletTopUpResolver } from './wallets/wallets.resolver.js';

/** Every resolver of every context: the schema is assembled here, at the top, so the GraphQL kit imports no context. */
const resolvers = [RootResolver, AuthResolver, PkiResolver, ReaderResolver, PsamProvisioningResolver, MasterKeyResolver, CardSessionResolver, LedgerAccountResolver, JournalEntryResolver, PostingResolver, CityResolver, CardCompanyResolver, FeePlanResolver, MerchantResolver, BillerResolver, CardResolver, CardProfileResolver, TopUpResolver, CardTopUpsResolver, CardPendingLoadsResolver, PendingLoadListResolver, PaymentResolver, BillResolver, BillPaymentResolver, BillPaymentsOfBillResolver, WebhookEndpointResolver, EventResolver, WebhookDeliveryResolver, OfflineUploadResolver, SettlementResolver, SettlementBatchResolver, SettlementLineResolver, ReconciliationResolver, TransitWalletResolver, WalletTopUpResolver, QrRideResolver, AnalyticsResolver] as const;

let built: Promise<GraphQLSchema> | undefined;

/** The API schema, built once per process from the code (code-first, DESIGN.md §4). */
export function apiSchema(): Promise<GraphQLSchema> {
  built ??= buildSchema({ resolvers, authChecker, authMode: 'error', validate: false });
  return built;
}

/** The SDL checked in as `schema/schema.graphql`: sorted, so it diffs well. */
export async function printApiSchema(): Promise<string> {
  return `${printSchema(lexicographicSortSchema(await apiSchema()))}\n`;
}
