/**
 * Offline transit uploads (issue 8, part 1; DESIGN.md §7 "Offline transit"). A certified terminal
 * (a reader owned by a card company or a merchant: a bus validator, a metro gate) sends a signed
 * batch of purchases its cards made while it was offline. The batch passes a column of named checks
 * (STYLE.md §1) and is refused whole if one fails; then each record gets its own outcome, and the
 * accepted ones are posted card purse → the transit payable, all in one transaction with the batch.
 * The records are decided and booked set-based (offline-booking.ts, issue 23).
 */
import { createHash, randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { TopUpLimits } from '../config/config.js';
import type { KeyStore } from '../readers/key-store.js';
import { lowBalanceAfterOfflineBatch } from '../topups/auto-top-up.js';
import type { ReaderRow } from '../readers/readers.service.js';
import { executeBound } from '../db/bound-statement.js';
import { DomainError } from '../graphql/domain-error.js';
import { UserErrorCode } from '../graphql/user-error.js';
import { bookOfflineRecords, type OfflineOutcome } from './offline-booking.js';
import { markRideDaysOfOfflineBatch } from '../analytics/ridership-rollup.js';
import { checkTerminalBatch, type SignedTerminalBatch } from './terminal-batch-checks.js';
import { MalformedBatchError, type OfflineBody, parseOfflineBody } from './offline-records.js';

export type { OfflineOutcome } from './offline-booking.js';

/** Why a whole batch was refused: the step that refused it. */
export type BatchRefusal = 'NOT_A_TERMINAL' | 'UNKNOWN_CA' | 'CERTIFICATE_REVOKED' | 'CERTIFICATE_EXPIRED' | 'CERTIFICATE_NOT_THIS_TERMINAL' | 'TERMINAL_NOT_ACTIVE' | 'BAD_SIGNATURE' | 'MALFORMED_BATCH' | 'TERMINAL_NUMBER_MISMATCH';

/** A batch refused whole: OFFLINE_BATCH_REFUSED on its body, or OFFLINE_BATCH_ID_REUSED on its batch id. */
export class OfflineBatchError extends DomainError<BatchRefusal | 'BATCH_ID_REUSED'> {
  constructor(
    readonly refusal: BatchRefusal | 'BATCH_ID_REUSED',
    message: string,
  ) {
    super(
      refusal,
      `${refusal}: ${message}`,
      refusal === 'BATCH_ID_REUSED' ? UserErrorCode.OFFLINE_BATCH_ID_REUSED : UserErrorCode.OFFLINE_BATCH_REFUSED,
      refusal === 'BATCH_ID_REUSED' ? 'batchId' : 'body',
    );
  }
}

export interface RecordAnswer {
  /** The record's place in the uploaded body, from 0. */
  index: number;
  asn: string;
  offlineCounter: number;
  amount: number;
  outcome: OfflineOutcome;
  /** ACCEPTED and GAP were posted; the others were recorded, not posted. */
  accepted: boolean;
  reason: string;
  journalEntryId: string | null;
}

export interface BatchAnswer {
  id: string;
  readerId: string;
  batchId: string;
  receivedAt: string;
  records: RecordAnswer[];
}

/** An offline card batch: its body is `{ terminalNumber?, records: [...] }` (offline-records.ts). */
export type UploadInput = SignedTerminalBatch;

export interface UploadDeps {
  keyStore: KeyStore;
  /** The auto top-up a fare taking a card below its threshold starts is held to these limits. */
  topUpLimits: TopUpLimits;
  now?: () => Date;
}

// ---- the batch checks: checkTerminalBatch (terminal-batch-checks.ts), then the body and the terminal number ----

function parseBody(body: string): OfflineBody {
  try {
    return parseOfflineBody(body);
  } catch (err) {
    if (err instanceof MalformedBatchError) throw new OfflineBatchError('MALFORMED_BATCH', err.message);
    throw err;
  }
}

/**
 * The terminal number the batch names is the uploading terminal's registered one. Each TAC is
 * verified with the registered number anyway; this refuses, whole and by name, a batch a terminal
 * made with another PSAM's number (another city's, or one not provisioned to it), instead of
 * answering BAD_TAC for every record.
 */
function checkTerminalNumber(terminal: ReaderRow, named: string | undefined): void {
  if (named !== undefined && named !== terminal.terminal_number) throw new OfflineBatchError('TERMINAL_NUMBER_MISMATCH', `the batch names terminal number ${named}; this terminal is registered with ${terminal.terminal_number}`);
}

/**
 * Takes a terminal's batch once. The same batch again (terminal + batch id, same body) answers
 * what was stored and posts nothing; a concurrent second upload waits on the unique index and
 * then reads the first one's answer. A different body under a used batch id is refused.
 */
export async function uploadOfflineBatch(em: EntityManager, deps: UploadDeps, input: UploadInput): Promise<{ answer: BatchAnswer; replayed: boolean }> {
  const now = deps.now?.() ?? new Date();
  await checkTerminalBatch(em, input, now, (refusal, message) => new OfflineBatchError(refusal, message));
  const { terminalNumber, records } = parseBody(input.body);
  checkTerminalNumber(input.terminal, terminalNumber);
  const bodyHash = createHash('sha256').update(input.body, 'utf8').digest('hex');

  return em.transactional(async (tx) => {
    const id = randomUUID();
    const [claimed] = await tx.execute<{ id: string; received_at: Date }[]>(
      `insert into offline_batch (id, reader_id, batch_id, body_sha256, received_at) values (?, ?, ?, ?, ?)
       on conflict (reader_id, batch_id) do nothing returning id, received_at`,
      [id, input.terminal.id, input.batchId, bodyHash, now],
    );
    if (!claimed) {
      const [stored] = await tx.execute<{ body_sha256: string; answer: BatchAnswer }[]>(`select body_sha256, answer from offline_batch where reader_id = ? and batch_id = ?`, [input.terminal.id, input.batchId]);
      if (stored!.body_sha256 !== bodyHash) throw new OfflineBatchError('BATCH_ID_REUSED', `batch ${input.batchId} was uploaded before with another body`);
      return { answer: stored!.answer, replayed: true };
    }
    // A card's records in counter order, so a batch that lists them out of order shows no false gap.
    const order = records.map((record, index) => ({ record, index })).sort((a, b) => (a.record.asn < b.record.asn ? -1 : a.record.asn > b.record.asn ? 1 : a.record.offlineCounter - b.record.offlineCounter || a.index - b.index));
    const { results, purseMoves } = await bookOfflineRecords(tx, deps, input.terminal, id, records, order.map((o) => o.index));
    // Every record's row in one statement (JSON in one bound parameter: 5,000 rows of 14 columns would pass PostgreSQL's 65,535 parameters).
    await executeBound(
      tx,
      `insert into offline_transaction (id, batch_row_id, record_no, asn, card_city, offline_counter, amount, terminal_serial, date, time, tac, outcome, reason, journal_entry_id)
       select gen_random_uuid(), $1, r.record_no, r.asn, r.card_city, r.offline_counter, r.amount, r.terminal_serial, r.date, r.time, r.tac, r.outcome, r.reason, r.journal_entry_id
         from json_to_recordset($2::json) as r(record_no int, asn text, card_city text, offline_counter int, amount bigint, terminal_serial bigint, date text, time text, tac text, outcome text, reason text, journal_entry_id uuid)
        order by r.record_no`,
      [
        id,
        JSON.stringify(
          records.map((record, index) => ({
            record_no: index,
            asn: record.asn,
            card_city: record.cardCity,
            offline_counter: record.offlineCounter,
            amount: record.amount,
            terminal_serial: record.terminalSerial,
            date: record.date,
            time: record.time,
            tac: record.tac,
            outcome: results[index]!.outcome,
            reason: results[index]!.reason,
            journal_entry_id: results[index]!.journalEntryId,
          })),
        ),
      ],
    );
    // The days these fares fall on are booked since their ridership rollup (analytics/ridership-rollup.ts).
    if (results.some((r) => r.outcome === 'ACCEPTED' || r.outcome === 'GAP')) await markRideDaysOfOfflineBatch(tx, id);
    const answers: RecordAnswer[] = records.map((record, index) => {
      const result = results[index]!;
      return { index, asn: record.asn, offlineCounter: record.offlineCounter, amount: record.amount, accepted: result.outcome === 'ACCEPTED' || result.outcome === 'GAP', ...result };
    });
    const answer: BatchAnswer = { id, readerId: input.terminal.id, batchId: input.batchId, receivedAt: new Date(claimed.received_at).toISOString(), records: answers };
    await executeBound(tx, `update offline_batch set answer = $1::jsonb where id = $2`, [JSON.stringify(answer), id]);
    // Offline fares count like online ones for the card's holder: once per card the batch took below its threshold.
    await lowBalanceAfterOfflineBatch(tx, deps.topUpLimits, id, purseMoves);
    return { answer, replayed: false };
  });
}
