import { BigIntType } from '@mikro-orm/core';
import { Entity, PrimaryKey, Property } from '@mikro-orm/decorators/legacy';

/**
 * The operator's service fee terms for a merchant or biller: a percentage in basis points plus a
 * fixed fee, never less than a minimum. Amounts in minor units of `currency`. See `feeFor()`.
 */
@Entity({ tableName: 'fee_plan' })
export class FeePlan {
  @PrimaryKey({ type: 'uuid' })
  id!: string;

  /** Unique. */
  @Property({ type: 'text' })
  name!: string;

  /** 1 bp = 0.01 %; 0 to 10000. */
  @Property({ type: 'integer' })
  basisPoints!: number;

  @Property({ type: new BigIntType('bigint') })
  fixedFee!: bigint;

  @Property({ type: new BigIntType('bigint') })
  minimumFee!: bigint;

  /** Never changes: merchants and billers of a city in this currency may use the plan. */
  @Property({ type: 'text' })
  currency!: string;

  @Property({ type: 'timestamptz' })
  createdAt!: Date;
}
