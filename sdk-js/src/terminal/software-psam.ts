/**
 * A software PSAM (purchase secure access module) for a terminal: it holds the card company's
 * purchase master keys and the terminal number the card company provisioned
 * (`provisionTerminal`), computes MAC1 for DEBIT FOR PURCHASE and checks the card's MAC2, as a
 * PSAM's `80 70` / `80 72` commands do (CARD-PROTOCOL.md §3, §5).
 *
 * The keys stay in private fields: they are not enumerable, `JSON.stringify` and `util.inspect`
 * show no key, and nothing here logs. A terminal keeps the package it was sent (sealed) and opens
 * it at start; it never writes the keys anywhere.
 */
import { constants, createDecipheriv, type KeyObject, privateDecrypt, verify, X509Certificate } from 'node:crypto';
import { ALGORITHM_IDS, type PurseAlgorithm, purseCipher } from '../cards/card-crypto.js';

export const PSAM_PACKAGE_PROTOCOL = 'onecard-psam-v1';
/** Transaction type of an e-purse purchase, in MAC1 and the TAC. */
const PURCHASE_TYPE = 0x06;

/** The package `provisionTerminal` answers (`psam { payload signature certificateChain }`). */
export interface PsamPackage {
  payload: string;
  signature: string;
  certificateChain: string[];
}

/** Why a package was not installed: not signed by the city's host, not for this terminal, or not openable. */
export class PsamPackageError extends Error {}

interface PurchaseKey {
  keyVersion: number;
  algorithm: PurseAlgorithm;
  masterKey: Buffer;
}

export interface OpenPsamOptions {
  /** The terminal's encryption private key (PEM): the key of the encryption certificate it was registered with. */
  encryptionKeyPem: string | KeyObject;
  /** The terminal's global id (Reader), as it was registered. */
  terminal: string;
  /** The CA certificates the terminal pinned at registration (the root): the host chain must lead to one. */
  trustedCertificatesPem: string[];
  /** The terminal's city certificate (PEM): the host certificate must be from the city CA that issued it, not another city's. */
  cityCertificatePem: string;
  /** The last terminal transaction serial this terminal used (kept across restarts); 0 for a new terminal. */
  lastSerial?: number;
  now?: () => Date;
}

/**
 * Checks the host's signature and its chain [host, city CA]: the city CA is the one that issued this
 * terminal's city certificate (its own card company's, as the reader agent requires of host
 * messages), and chains to a pinned CA.
 */
function verifyHostSignature(pkg: PsamPackage, trusted: string[], cityCertificatePem: string, now: Date): void {
  let host: X509Certificate, ca: X509Certificate, anchors: X509Certificate[], own: X509Certificate;
  try {
    [host, ca] = [new X509Certificate(pkg.certificateChain[0]!), new X509Certificate(pkg.certificateChain[1]!)];
    anchors = trusted.map((pem) => new X509Certificate(pem));
    own = new X509Certificate(cityCertificatePem);
  } catch {
    throw new PsamPackageError('the host certificate chain is unreadable');
  }
  const valid = (c: X509Certificate) => +now >= Date.parse(c.validFrom) && +now <= Date.parse(c.validTo);
  const issued = (child: X509Certificate, parent: X509Certificate) => child.checkIssued(parent) && child.verify(parent.publicKey);
  if (!ca.ca || !issued(own, ca)) throw new PsamPackageError('the host certificate is not from this terminal’s city CA');
  if (host.ca || !valid(host) || !valid(ca) || !issued(host, ca)) throw new PsamPackageError('the host certificate is not valid or not issued by its CA');
  if (!anchors.some((a) => a.fingerprint256 === ca.fingerprint256 || (a.ca && issued(ca, a)))) throw new PsamPackageError('the host certificate does not chain to a pinned CA');
  let ok = false;
  try {
    ok = verify('sha256', Buffer.from(pkg.payload, 'utf8'), host.publicKey, Buffer.from(pkg.signature, 'base64'));
  } catch {
    ok = false;
  }
  if (!ok) throw new PsamPackageError('the host signature over the package does not verify');
}

export class SoftwarePsam {
  /** The 6-byte terminal number, 12 hex digits: the terminal field of every purchase. */
  readonly terminalNumber: string;
  readonly #keys: Map<number, PurchaseKey>;
  #lastSerial: number;

  private constructor(terminalNumber: string, keys: PurchaseKey[], lastSerial: number) {
    this.terminalNumber = terminalNumber;
    this.#keys = new Map(keys.map((k) => [k.keyVersion, k]));
    this.#lastSerial = lastSerial;
  }

  /**
   * Installs a provisioned package: checks the host's signature and chain, that it is for this
   * terminal, and opens the sealed keys with the terminal's encryption key (RSA-OAEP SHA-256 wraps
   * an AES-256-GCM key; the associated data binds terminal and terminal number).
   */
  static open(pkg: PsamPackage, opts: OpenPsamOptions): SoftwarePsam {
    verifyHostSignature(pkg, opts.trustedCertificatesPem, opts.cityCertificatePem, opts.now?.() ?? new Date());
    const payload = JSON.parse(pkg.payload) as { protocol: string; terminal: string; terminalNumber: string; sealed: { wrappedKey: string; iv: string; ciphertext: string; tag: string } };
    if (payload.protocol !== PSAM_PACKAGE_PROTOCOL) throw new PsamPackageError(`not a ${PSAM_PACKAGE_PROTOCOL} package`);
    if (payload.terminal !== opts.terminal) throw new PsamPackageError('the package is for another terminal');
    let secrets: { terminalNumber: string; keys: { keyVersion: number; algorithm: PurseAlgorithm; purchaseMasterKey: string }[] };
    try {
      const aesKey = privateDecrypt({ key: opts.encryptionKeyPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, Buffer.from(payload.sealed.wrappedKey, 'base64'));
      const decipher = createDecipheriv('aes-256-gcm', aesKey, Buffer.from(payload.sealed.iv, 'base64')).setAAD(Buffer.from(`${PSAM_PACKAGE_PROTOCOL}\n${opts.terminal}\n${payload.terminalNumber}`));
      decipher.setAuthTag(Buffer.from(payload.sealed.tag, 'base64'));
      const plain = Buffer.concat([decipher.update(Buffer.from(payload.sealed.ciphertext, 'base64')), decipher.final()]);
      secrets = JSON.parse(plain.toString('utf8'));
      plain.fill(0);
      aesKey.fill(0);
    } catch {
      throw new PsamPackageError('the sealed keys do not open with this terminal’s encryption key');
    }
    if (secrets.terminalNumber !== payload.terminalNumber) throw new PsamPackageError('the sealed terminal number differs from the signed one');
    const keys = secrets.keys.map((k) => ({ keyVersion: k.keyVersion, algorithm: k.algorithm, masterKey: Buffer.from(k.purchaseMasterKey, 'hex') }));
    return new SoftwarePsam(secrets.terminalNumber, keys, opts.lastSerial ?? 0);
  }

  /** The last terminal transaction serial used: the terminal stores it, and passes it back at start. */
  get lastSerial(): number {
    return this.#lastSerial;
  }

  /** The key versions it holds. */
  get keyVersions(): number[] {
    return [...this.#keys.keys()];
  }

  /**
   * MAC1 for DEBIT FOR PURCHASE (the PSAM's `80 70`): the card's DPK diversified from the master key
   * by its ASN, SESPK from the card's random, offline counter and the new terminal serial, then
   * MAC1 over amount || 06 || terminal || date || time. The serial is taken even if the purchase
   * does not go through (as a PSAM's does).
   */
  purchaseMac1(input: { asn: Uint8Array; keyVersion: number; algorithmId: number; random: Uint8Array; offlineCounter: number; amount: number; date: string; time: string }): { terminalSerial: number; mac1: Buffer; session: PurchaseSession } {
    const key = this.#keys.get(input.keyVersion);
    if (!key) throw new RangeError(`the PSAM holds no purchase key version ${input.keyVersion}`);
    if (ALGORITHM_IDS[key.algorithm] !== input.algorithmId) throw new RangeError(`the card's algorithm id ${input.algorithmId} is not that of key version ${input.keyVersion} (${key.algorithm})`);
    this.#lastSerial = this.#lastSerial >= 0xffff_ffff ? 1 : this.#lastSerial + 1;
    const terminalSerial = this.#lastSerial;
    const cipher = purseCipher(key.algorithm);
    const dpk = cipher.diversify(key.masterKey, input.asn);
    const sessionKey = cipher.sessionKey(dpk, purchaseSessionInput(input.random, input.offlineCounter, terminalSerial));
    dpk.fill(0);
    const mac1 = cipher.mac(sessionKey, purchaseMac1Data(input.amount, Buffer.from(this.terminalNumber, 'hex'), input.date, input.time));
    return { terminalSerial, mac1, session: new PurchaseSession(sessionKey, key.algorithm, input.amount) };
  }

  toJSON() {
    return { terminalNumber: this.terminalNumber, keyVersions: this.keyVersions, lastSerial: this.#lastSerial };
  }

  [Symbol.for('nodejs.util.inspect.custom')]() {
    return `SoftwarePsam { terminalNumber: '${this.terminalNumber}', keyVersions: [${this.keyVersions.join(', ')}], keys: [hidden] }`;
  }
}

/** One purchase's session key, kept only to check the card's MAC2 (the PSAM's `80 72`). */
export class PurchaseSession {
  readonly #key: Buffer;
  constructor(
    key: Buffer,
    private readonly algorithm: PurseAlgorithm,
    private readonly amount: number,
  ) {
    this.#key = key;
  }
  /** MAC2 = MAC(SESPK; amount): the card debited with this session's key (CARD-PROTOCOL.md §3). */
  verifyMac2(mac2: Uint8Array): boolean {
    const amount = Buffer.alloc(4);
    amount.writeUInt32BE(this.amount);
    const expected = purseCipher(this.algorithm).mac(this.#key, amount);
    return expected.length === mac2.length && expected.equals(Buffer.from(mac2));
  }
  [Symbol.for('nodejs.util.inspect.custom')]() {
    return 'PurchaseSession { key: [hidden] }';
  }
}

/** random (4) || offline counter (2) || the last 2 bytes of the terminal serial (CARD-PROTOCOL.md §3). */
export function purchaseSessionInput(random: Uint8Array, offlineCounter: number, terminalSerial: number): Buffer {
  const input = Buffer.alloc(8);
  Buffer.from(random).copy(input, 0);
  input.writeUInt16BE(offlineCounter, 4);
  input.writeUInt16BE(terminalSerial & 0xffff, 6);
  return input;
}

/** amount (4) || type 06 || terminal (6) || date (4) || time (3): what MAC1 covers. */
export function purchaseMac1Data(amount: number, terminal: Buffer, date: string, time: string): Buffer {
  const a = Buffer.alloc(4);
  a.writeUInt32BE(amount);
  return Buffer.concat([a, Buffer.from([PURCHASE_TYPE]), terminal, Buffer.from(date + time, 'hex')]);
}
