import { BigIntType, Collection } from '@mikro-orm/core';
import { Entity, ManyToOne, OneToMany, PrimaryKey, Property } from '@mikro-orm/decorators/legacy';
import { LedgerAccount } from './ledger-account.entity.js';

/** One movement of money: two or more postings that sum to zero per currency. Never changed once posted. */
@Entity({ tableName: 'journal_entry' })
export class JournalEntry {
  @PrimaryKey({ type: 'uuid' })
  id!: string;

  /** Makes `post()` idempotent: the same key never posts twice. */
  @Property({ type: 'text' })
  entryKey!: string;

  @Property({ type: 'text' })
  description!: string;

  @Property({ type: 'timestamptz' })
  postedAt!: Date;

  /** Set on a reversal: the entry it reverses. */
  @Property({ type: 'uuid', nullable: true })
  reversesId?: string | null;

  @Property({ type: 'jsonb' })
  metadata!: Record<string, unknown>;

  @OneToMany(() => Posting, (p) => p.entry, { orderBy: { lineNo: 'asc' } })
  postings = new Collection<Posting>(this);
}

/** One line of an entry: a signed amount, positive for a debit and negative for a credit. */
@Entity({ tableName: 'posting' })
export class Posting {
  @PrimaryKey({ type: new BigIntType('bigint') })
  id!: bigint;

  @ManyToOne(() => JournalEntry, { fieldName: 'entry_id' })
  entry!: JournalEntry;

  @Property({ type: 'integer' })
  lineNo!: number;

  @ManyToOne(() => LedgerAccount, { fieldName: 'account_id' })
  account!: LedgerAccount;

  @Property({ type: new BigIntType('bigint') })
  amount!: bigint;

  @Property({ type: 'text' })
  currency!: string;

  /** The account's balance (normal side) right after this posting. */
  @Property({ type: new BigIntType('bigint') })
  balanceAfter!: bigint;
}
