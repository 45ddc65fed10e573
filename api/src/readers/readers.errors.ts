export type ReaderErrorCode = 'NOT_FOUND' | 'INVALID_CSR' | 'KEY_MISMATCH' | 'DUPLICATE_SERIAL' | 'INVALID_TRANSITION' | 'NO_CITY_CA' | 'INVALID_INPUT';

export class ReaderError extends Error {
  constructor(
    readonly code: ReaderErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}
