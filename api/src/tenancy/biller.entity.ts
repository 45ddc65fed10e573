import { Entity, ManyToOne, PrimaryKey, Property } from '@mikro-orm/decorators/legacy';
import { City } from './city.entity.js';
import { FeePlan } from './fee-plan.entity.js';
import { TenantStatus } from './merchant.entity.js';

/** What a biller bills for (公用事业缴费: utility bill payment). */
export enum BillerKind {
  WATER = 'WATER',
  GAS = 'GAS',
  HEATING = 'HEATING',
  ELECTRICITY = 'ELECTRICITY',
  TELECOM = 'TELECOM',
}

/** A utility that publishes bills to be paid from card wallets in one city. */
@Entity({ tableName: 'biller' })
export class Biller {
  @PrimaryKey({ type: 'uuid' })
  id!: string;

  @ManyToOne(() => City, { fieldName: 'city_id' })
  city!: City;

  /** The city's currency, kept on the row so the database can check the fee plan's against it. */
  @Property({ type: 'text' })
  currency!: string;

  /** Unique within the city. */
  @Property({ type: 'text' })
  name!: string;

  @Property({ type: 'text' })
  kind!: BillerKind;

  @ManyToOne(() => FeePlan, { fieldName: 'fee_plan_id', nullable: true })
  feePlan!: FeePlan | null;

  @Property({ type: 'text' })
  status!: TenantStatus;

  @Property({ type: 'timestamptz' })
  createdAt!: Date;
}
