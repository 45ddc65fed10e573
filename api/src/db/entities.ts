import { JournalEntry, Posting } from '../ledger/journal-entry.entity.js';
import { LedgerAccount } from '../ledger/ledger-account.entity.js';

/** Every MikroORM entity of every context. */
export const entities = [LedgerAccount, JournalEntry, Posting];
