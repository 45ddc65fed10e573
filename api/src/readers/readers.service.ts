import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Principal } from '../auth/principal.js';
import { PkiError } from '../pki/pki.errors.js';
import { findCityCa, findIssued, issueFromCsr, revokeCertificate } from '../pki/pki.service.js';
import { fromPem, parseCsr, publicKeyFingerprint, subjectField } from '../pki/x509.js';
import { ReaderError } from './readers.errors.js';
import { assertMove, defineMachine, NOW, transition } from '../lifecycle/machine.js';

export type ReaderOwnerKind = 'MERCHANT' | 'BILLER' | 'CARD_COMPANY' | 'CARDHOLDER';
export type ReaderStatus = 'ACTIVE' | 'SUSPENDED' | 'REVOKED';

export interface ReaderRow {
  id: string;
  serial: string;
  model: string;
  owner_kind: ReaderOwnerKind;
  owner_id: string;
  city_id: string;
  /**
   * The terminal number (终端编号): 6 bytes as 12 upper-case hex digits, unique in the city. BCD (12
   * decimal digits) when registered; a reader registered before numbers were (or without one) has
   * the number derived from its serial that its cards' records already carry.
   */
  terminal_number: string;
  status: ReaderStatus;
  /** Null while the national certificate awaits the national authority (the operator). */
  national_certificate_serial: string | null;
  /** The national CSR, kept until the operator issues the national certificate from it. */
  national_csr_pem: string | null;
  city_certificate_serial: string;
  /** The city certificate's key: it signs the reader's session messages. */
  public_key_fingerprint: string;
  /** SEPARATE_KEYS: national, city and encryption key pairs; SINGLE_KEY: registered before, one key for all three (accepted until it re-registers). */
  key_scheme: 'SINGLE_KEY' | 'SEPARATE_KEYS';
  encryption_certificate_serial: string | null;
  created_at: Date;
  status_changed_at: Date;
}

/** Reader states as data (STYLE.md §2): a revoked reader never comes back. */
export const READER_TRANSITIONS: Readonly<Record<ReaderStatus, readonly ReaderStatus[]>> = {
  ACTIVE: ['SUSPENDED', 'REVOKED'],
  SUSPENDED: ['ACTIVE', 'REVOKED'],
  REVOKED: [],
};

/** The reader lifecycle (lifecycle/machine.ts). */
export const readerMachine = defineMachine<ReaderStatus, ReaderRow>({
  name: 'reader',
  table: 'reader',
  initial: ['ACTIVE'],
  transitions: READER_TRANSITIONS,
  refuse: (from, to) => new ReaderError('INVALID_TRANSITION', `a ${from} reader cannot become ${to}`),
});

/** A registered terminal number: 6 bytes BCD, 12 decimal digits (the PSAM's terminal number, `00 B0 96 00 06`). */
const TERMINAL_NUMBER = /^[0-9]{12}$/;

const duplicateTerminalNumber = (number: string, cityCode: string) => new ReaderError('DUPLICATE_TERMINAL_NUMBER', `terminal number ${number} is registered to another reader of ${cityCode}`, 'terminalNumber');

/** Readers certificates last two years; a reader re-registers with fresh CSRs after that. */
const READER_CERT_DAYS = 730;

export interface RegisterReaderInput {
  serial: string;
  model: string;
  owner: { kind: ReaderOwnerKind; id: string; name: string };
  cityId: string;
  cityCode: string;
  /** The terminal number, 12 decimal digits (6 bytes BCD); absent: the number derived from the serial, as before numbers were registered. */
  terminalNumber?: string;
  /** CSR for the certificate of the national IC card centre's CA. */
  nationalCsrPem: string;
  /** CSR for the certificate of the city card company's CA. */
  cityCsrPem: string;
  /** CSR for the reader's encryption certificate (city CA): the key what is sealed to the reader is wrapped to. */
  encryptionCsrPem: string;
  publicUrl: string;
  /**
   * Whether the caller is the national authority (the operator): it issues the national
   * certificate at once. A city card company's registration leaves it pending, for the operator
   * to approve (issueNationalCertificate).
   */
  nationalAuthority: boolean;
}

/**
 * Registers a reader with a key pair per purpose (DESIGN.md §6): the national certificate's key
 * proves access (the hello), the city certificate's signs the reader's messages, the encryption
 * certificate's opens what is sealed to it. Three CSRs over three different keys; the national
 * working CA issues the first, the city's working CA the other two. All or nothing.
 */
export async function registerReader(em: EntityManager, kek: Buffer, input: RegisterReaderInput): Promise<{ reader: ReaderRow; nationalChainPem: string[]; cityChainPem: string[]; encryptionChainPem: string[] }> {
  if (!/^[A-Za-z0-9._-]{3,64}$/.test(input.serial)) throw new ReaderError('INVALID_INPUT', 'a reader serial is 3 to 64 of A–Z a–z 0–9 . _ -', 'serial');
  if (!input.model.trim() || input.model.length > 100) throw new ReaderError('INVALID_INPUT', 'a reader model is 1 to 100 characters', 'model');
  if (input.terminalNumber !== undefined && !TERMINAL_NUMBER.test(input.terminalNumber)) throw new ReaderError('INVALID_INPUT', 'a terminal number is 12 decimal digits (6 bytes BCD)', 'terminalNumber');
  const fingerprints: string[] = [];
  for (const [field, pem] of [['nationalCsr', input.nationalCsrPem], ['cityCsr', input.cityCsrPem], ['encryptionCsr', input.encryptionCsrPem]] as const) {
    try {
      fingerprints.push(publicKeyFingerprint(parseCsr(pem).publicKey!));
    } catch (err) {
      throw new ReaderError('INVALID_CSR', `${field}: ${err instanceof Error ? err.message : 'unreadable'}`, field);
    }
  }
  if (new Set(fingerprints).size !== 3) {
    throw new ReaderError('KEY_MISMATCH', 'the national, city and encryption CSRs must each carry a key of their own (one key pair per purpose)', fingerprints[0] === fingerprints[1] ? 'cityCsr' : 'encryptionCsr');
  }
  const cityCa = await findCityCa(em, input.cityId);
  if (!cityCa) throw new ReaderError('NO_CITY_CA', `city ${input.cityCode} has no working CA yet`, 'city');
  return em.transactional(async (tx) => {
    const [taken] = await tx.execute(`select 1 from reader where serial = ?`, [input.serial]);
    if (taken) throw new ReaderError('DUPLICATE_SERIAL', `a reader with serial ${input.serial} is registered`, 'serial');
    if (input.terminalNumber !== undefined) {
      // The unique index (city, terminal number) is the guard; this read only names the refusal before certificates are issued.
      const [numbered] = await tx.execute(`select 1 from reader where city_id = ? and terminal_number = ?`, [input.cityId, input.terminalNumber]);
      if (numbered) throw duplicateTerminalNumber(input.terminalNumber, input.cityCode);
    }
    const subject = { commonName: input.serial, organization: input.owner.name, organizationalUnit: input.model, country: 'CN' };
    const common = { profile: 'reader' as const, subject, validityDays: READER_CERT_DAYS, publicUrl: input.publicUrl };
    try {
      const national = input.nationalAuthority ? await issueFromCsr(tx, kek, 'national', { ...common, csrPem: input.nationalCsrPem }) : null;
      const city = await issueFromCsr(tx, kek, cityCa.id, { ...common, csrPem: input.cityCsrPem });
      const encryption = await issueFromCsr(tx, kek, cityCa.id, { ...common, profile: 'reader-encryption', csrPem: input.encryptionCsrPem });
      const [reader] = await tx.execute<ReaderRow[]>(
        `insert into reader (id, serial, model, owner_kind, owner_id, city_id, terminal_number, national_certificate_serial, national_csr_pem, city_certificate_serial, public_key_fingerprint, key_scheme, encryption_certificate_serial)
         values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'SEPARATE_KEYS', ?) returning *`,
        [randomUUID(), input.serial, input.model, input.owner.kind, input.owner.id, input.cityId, input.terminalNumber ?? null, national?.row.serial ?? null, national ? null : input.nationalCsrPem, city.row.serial, fingerprints[1], encryption.row.serial],
      ).catch((err: unknown) => {
        // Two registrations of one number at once: the second meets the unique index.
        if (input.terminalNumber !== undefined && (err as { constraint?: string })?.constraint === 'reader_city_terminal_number') throw duplicateTerminalNumber(input.terminalNumber, input.cityCode);
        throw err;
      });
      return { reader: reader!, nationalChainPem: national?.chainPem ?? [], cityChainPem: city.chainPem, encryptionChainPem: encryption.chainPem };
    } catch (err) {
      if (err instanceof PkiError) throw new ReaderError(err.code === 'NOT_FOUND' ? 'NO_CITY_CA' : 'INVALID_INPUT', err.message);
      throw err;
    }
  });
}

/**
 * The national authority (the operator) issues a reader's pending national certificate from the
 * CSR its registration kept, with the subject of its city certificate. Refused for a reader that
 * has one, or is REVOKED.
 */
export async function issueNationalCertificate(em: EntityManager, kek: Buffer, readerId: string, publicUrl: string): Promise<{ reader: ReaderRow; nationalChainPem: string[] }> {
  return em.transactional(async (tx) => {
    const [reader] = await tx.execute<ReaderRow[]>(`select * from reader where id = ? for update`, [readerId]);
    if (!reader) throw new ReaderError('NOT_FOUND', `no reader ${readerId}`);
    if (reader.national_certificate_serial || !reader.national_csr_pem) throw new ReaderError('INVALID_INPUT', 'the reader already has its national certificate', 'reader');
    if (reader.status === 'REVOKED') throw new ReaderError('INVALID_INPUT', 'the reader is REVOKED', 'reader');
    const city = fromPem((await findIssued(tx, reader.city_certificate_serial))!.certificate_pem);
    const field = (name: string) => subjectField(city, name);
    const subject = { commonName: field('CN')!, organization: field('O'), organizationalUnit: field('OU'), country: field('C') };
    const national = await issueFromCsr(tx, kek, 'national', { profile: 'reader', subject, validityDays: READER_CERT_DAYS, publicUrl, csrPem: reader.national_csr_pem });
    const [updated] = await tx.execute<ReaderRow[]>(`update reader set national_certificate_serial = ?, national_csr_pem = null where id = ? returning *`, [national.row.serial, readerId]);
    return { reader: updated!, nationalChainPem: national.chainPem };
  });
}

/** Moves a reader along its transitions; revoking also revokes both certificates (CRLs list them). */
export async function changeReaderStatus(em: EntityManager, readerId: string, to: ReaderStatus, reasonCode = 5): Promise<ReaderRow> {
  return em.transactional(async (tx) => {
    const [reader] = await tx.execute<ReaderRow[]>(`select * from reader where id = ? for update`, [readerId]);
    if (!reader) throw new ReaderError('NOT_FOUND', `no reader ${readerId}`);
    if (reader.status === to) return reader;
    assertMove(readerMachine, reader.status, to);
    if (to === 'REVOKED') {
      if (reader.national_certificate_serial) await revokeCertificate(tx, reader.national_certificate_serial, reasonCode);
      await revokeCertificate(tx, reader.city_certificate_serial, reasonCode);
      if (reader.encryption_certificate_serial) await revokeCertificate(tx, reader.encryption_certificate_serial, reasonCode);
    }
    return transition(tx, readerMachine, reader, to, { status_changed_at: NOW });
  });
}

/**
 * Who sees which readers, as a WHERE clause: the operator all; a card company the readers of its
 * city; a merchant or biller its own; a cardholder app its holder's home readers.
 */
function visibility(principal: Principal): { sql: string; params: unknown[] } | null {
  const UUID = /^[0-9a-f-]{36}$/;
  switch (principal.kind) {
    case 'OPERATOR':
      return { sql: 'true', params: [] };
    case 'ISSUER':
      return principal.tenantId && UUID.test(principal.tenantId) ? { sql: 'city_id = (select city_id from card_company where id = ?)', params: [principal.tenantId] } : null;
    case 'MERCHANT':
    case 'BILLER':
      return principal.tenantId && UUID.test(principal.tenantId) ? { sql: 'owner_kind = ? and owner_id = ?', params: [principal.kind, principal.tenantId] } : null;
    case 'CARDHOLDER_APP':
      return principal.holderId && UUID.test(principal.holderId) ? { sql: "owner_kind = 'CARDHOLDER' and owner_id = ?", params: [principal.holderId] } : null;
  }
}

export async function findReaderFor(em: EntityManager, principal: Principal, id: string): Promise<ReaderRow | null> {
  const where = visibility(principal);
  if (!where || !/^[0-9a-f-]{36}$/.test(id)) return null;
  const [row] = await em.execute<ReaderRow[]>(`select * from reader where id = ? and (${where.sql})`, [id, ...where.params]);
  return row ?? null;
}

export async function listReadersFor(em: EntityManager, principal: Principal, opts: { afterSerial?: string; limit: number }): Promise<ReaderRow[]> {
  const where = visibility(principal);
  if (!where) return [];
  return em.execute<ReaderRow[]>(`select * from reader where (${where.sql}) and serial > ? order by serial limit ?`, [...where.params, opts.afterSerial ?? '', opts.limit]);
}

/** Which readers a principal may manage (register, suspend, revoke): the operator, or the city's card company. */
export function mayManageReadersOfCity(principal: Principal, cityIdOfIssuer: string | null, cityId: string): boolean {
  return principal.kind === 'OPERATOR' || (principal.kind === 'ISSUER' && cityIdOfIssuer === cityId);
}
