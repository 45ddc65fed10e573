/**
 * The gateway's wire format for parameters (Stripe's): `application/x-www-form-urlencoded`, one
 * level of nesting written `name[key]=value` (metadata, created[gte]). The client encodes with
 * encodeForm, the sandbox decodes with decodeForm.
 */
export type FormScalar = string | number | boolean | bigint;
export type FormValue = FormScalar | Record<string, FormScalar> | undefined;

/** Encodes parameters in the order given; undefined ones are left out. */
export function encodeForm(params: Record<string, FormValue>): URLSearchParams {
  const form = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined) continue;
    if (typeof value === 'object') {
      for (const [key, inner] of Object.entries(value)) form.append(`${name}[${key}]`, String(inner));
    } else {
      form.append(name, String(value));
    }
  }
  return form;
}

export interface DecodedForm {
  /** The value of a top-level parameter; the last one when it is repeated. */
  get(name: string): string | undefined;
  /** The `name[key]=value` parameters as a record (empty when there are none). */
  nested(name: string): Record<string, string>;
  /** Every parameter, sorted: the same request compares equal however its parameters were ordered. */
  canonical(): string;
}

const NESTED = /^([A-Za-z0-9_]+)\[([^[\]]+)\]$/;

export function decodeForm(body: string): DecodedForm {
  const flat = new Map<string, string>();
  const nested = new Map<string, Record<string, string>>();
  for (const [key, value] of new URLSearchParams(body)) {
    const m = NESTED.exec(key);
    if (m) {
      const group = nested.get(m[1]!) ?? {};
      group[m[2]!] = value;
      nested.set(m[1]!, group);
    } else {
      flat.set(key, value);
    }
  }
  return {
    get: (name) => flat.get(name),
    nested: (name) => ({ ...nested.get(name) }),
    canonical: () => {
      const pairs = [...new URLSearchParams(body)].map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
      return pairs.sort().join('&');
    },
  };
}
