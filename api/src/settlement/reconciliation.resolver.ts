import { Resolver } from 'type-graphql';

/** Reconciliation of settlement windows with the gateway's balance transactions (being built). */
@Resolver()
export class ReconciliationResolver {}
