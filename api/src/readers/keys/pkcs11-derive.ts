/**
 * C_DeriveKey with a CK_KEY_DERIVATION_STRING_DATA parameter, called through koffi (FFI) on the
 * session pkcs11js opened: pkcs11js has no binding for that parameter, which
 * CKM_DES3_ECB_ENCRYPT_DATA needs. koffi loads the same library file, and the dynamic loader hands
 * back the library pkcs11js already loaded (one copy per process), so session and object handles
 * are the same numbers in both (checked against SoftHSM2 2.6.1; docs/cardcrypto.md, "Keys in an HSM").
 */
import { createRequire } from 'node:module';
import type * as Koffi from 'koffi';

type KoffiModule = typeof Koffi;

/** A template attribute as the caller writes it: a CK_BBOOL, a CK_ULONG or bytes. */
export interface DeriveAttribute {
  type: number;
  value: boolean | number | Buffer;
}

export type DeriveKeyFn = (session: Buffer, mechanism: number, base: Buffer, data: Buffer, template: DeriveAttribute[]) => Buffer;

interface Binding {
  koffi: KoffiModule;
  ulongSize: number;
  stringData: Koffi.TypeObject;
  deriveKey: (session: bigint, mechanism: object, base: bigint, template: object[], count: number, out: number[]) => number;
}

/** One binding per library file: koffi.load returns the already loaded library, but the prototypes are ours. */
const bindings = new Map<string, Binding>();

function bind(module: string): Binding {
  const known = bindings.get(module);
  if (known) return known;
  const koffi = createRequire(import.meta.url)('koffi') as KoffiModule;
  const lib = koffi.load(module);
  // PKCS#11 v2.40 §2 (pkcs11t.h): on Unix the structures have the platform's natural alignment.
  koffi.struct('CK_MECHANISM', { mechanism: 'unsigned long', pParameter: 'void *', ulParameterLen: 'unsigned long' });
  koffi.struct('CK_ATTRIBUTE', { type: 'unsigned long', pValue: 'void *', ulValueLen: 'unsigned long' });
  const stringData = koffi.struct('CK_KEY_DERIVATION_STRING_DATA', { pData: 'void *', ulLen: 'unsigned long' });
  const deriveKey = lib.func(
    'unsigned long C_DeriveKey(unsigned long hSession, CK_MECHANISM *pMechanism, unsigned long hBaseKey, CK_ATTRIBUTE *pTemplate, unsigned long ulAttributeCount, _Out_ unsigned long *phKey)',
  ) as Binding['deriveKey'];
  const binding = { koffi, ulongSize: koffi.sizeof('unsigned long'), stringData, deriveKey };
  bindings.set(module, binding);
  return binding;
}

/** pkcs11js passes handles as CK_ULONG-sized little-endian buffers. */
const toUlong = (handle: Buffer): bigint => (handle.length === 8 ? handle.readBigUInt64LE(0) : BigInt(handle.readUInt32LE(0)));

/**
 * The C_DeriveKey of `module` for string-data mechanisms (CKM_DES3_ECB_ENCRYPT_DATA and the like).
 * Returns the new object's handle as pkcs11js writes handles; throws with the CKR_ name the token
 * answered (`name` maps return values), never with the data or the template's values.
 */
export function deriveKeyFunction(module: string, name: (rv: number) => string): DeriveKeyFn {
  const { koffi, ulongSize, stringData, deriveKey } = bind(module);
  const ulong = (n: number) => {
    const b = Buffer.alloc(ulongSize);
    if (ulongSize === 8) b.writeBigUInt64LE(BigInt(n));
    else b.writeUInt32LE(n);
    return b;
  };
  const encode = (v: DeriveAttribute['value']) => (Buffer.isBuffer(v) ? v : typeof v === 'boolean' ? Buffer.of(v ? 1 : 0) : ulong(v));
  return (session, mechanism, base, data, template) => {
    // Every buffer below stays referenced until the call returns: the token reads them during it.
    const pData = Buffer.from(data);
    const parameter = Buffer.alloc(koffi.sizeof(stringData));
    koffi.encode(parameter, stringData, { pData, ulLen: pData.length });
    const values = template.map((a) => encode(a.value));
    const attributes = template.map((a, i) => ({ type: a.type, pValue: values[i], ulValueLen: values[i]!.length }));
    const out = [0];
    const rv = deriveKey(toUlong(session), { mechanism, pParameter: parameter, ulParameterLen: parameter.length }, toUlong(base), attributes, attributes.length, out);
    if (rv !== 0) throw new Error(`C_DeriveKey: ${name(rv)}`);
    return ulong(out[0]!);
  };
}
