import { Field, ObjectType } from 'type-graphql';
import { CurrencyScalar, MinorUnitsScalar } from './scalars.js';

@ObjectType({ description: 'An amount of money: integer minor units and an ISO 4217 currency.' })
export class Money {
  @Field(() => MinorUnitsScalar, { description: 'Minor units of the currency (fen for CNY).' })
  amount!: bigint;

  @Field(() => CurrencyScalar, { description: 'ISO 4217 currency code, e.g. CNY.' })
  currency!: string;

  static of(amount: bigint, currency: string): Money {
    return Object.assign(new Money(), { amount, currency });
  }
}
