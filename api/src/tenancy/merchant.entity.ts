import { Entity, ManyToOne, PrimaryKey, Property } from '@mikro-orm/decorators/legacy';
import { City } from './city.entity.js';
import { FeePlan } from './fee-plan.entity.js';

/** Whether a merchant or biller may take payments now. */
export enum TenantStatus {
  ACTIVE = 'ACTIVE',
  SUSPENDED = 'SUSPENDED',
}

/** An e-commerce merchant taking card-wallet payments in one city. */
@Entity({ tableName: 'merchant' })
export class Merchant {
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

  @ManyToOne(() => FeePlan, { fieldName: 'fee_plan_id', nullable: true })
  feePlan!: FeePlan | null;

  @Property({ type: 'text' })
  status!: TenantStatus;

  @Property({ type: 'timestamptz' })
  createdAt!: Date;
}
