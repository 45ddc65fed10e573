export class PkiError extends Error {
  constructor(
    readonly code: 'NOT_FOUND' | 'INVALID_CSR' | 'ALREADY_EXISTS' | 'ROOT_MISMATCH' | 'INVALID_INPUT',
    message: string,
  ) {
    super(message);
  }
}
