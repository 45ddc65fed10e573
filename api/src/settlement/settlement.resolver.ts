import { Resolver } from 'type-graphql';

/** Settlement windows, batches, statements and interchange (being built). */
@Resolver()
export class SettlementResolver {}
