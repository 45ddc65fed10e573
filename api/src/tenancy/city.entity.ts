import { Entity, ManyToOne, PrimaryKey, Property } from '@mikro-orm/decorators/legacy';

/** A city whose card (城市一卡通) the platform serves. Its currency and time zone govern everyone in it. */
@Entity({ tableName: 'city' })
export class City {
  @PrimaryKey({ type: 'uuid' })
  id!: string;

  /** 2 to 8 upper-case letters, unique: `GZ`, `SZ`. Never changes. */
  @Property({ type: 'text' })
  code!: string;

  @Property({ type: 'text' })
  name!: string;

  /** IANA time zone; settlement business days are cut in it. */
  @Property({ type: 'text' })
  timeZone!: string;

  /** ISO 4217; every merchant, biller and fee plan of the city uses it. Never changes. */
  @Property({ type: 'text' })
  currency!: string;

  @Property({ type: 'timestamptz' })
  createdAt!: Date;
}

/** The city's card company (通卡公司): the issuer of its cards. Exactly one per city. */
@Entity({ tableName: 'card_company' })
export class CardCompany {
  @PrimaryKey({ type: 'uuid' })
  id!: string;

  @ManyToOne(() => City, { fieldName: 'city_id' })
  city!: City;

  @Property({ type: 'text' })
  name!: string;

  @Property({ type: 'timestamptz' })
  createdAt!: Date;
}
