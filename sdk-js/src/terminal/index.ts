/** The terminal kit (issue 24 item 4): a software PSAM, offline purchases as a gate makes them, signed batches. */
export { OfflinePurchaseError, cardDateTime, offlinePurchase } from './gate.js';
export type { OfflinePurchaseRecord } from './gate.js';
export { UPLOAD_OFFLINE_BATCH, offlineBatchBody, signOfflineBatch, uploadOfflineBatch } from './offline-batch.js';
export type { OfflineBatch, OfflineBatchAnswer } from './offline-batch.js';
export { PSAM_PACKAGE_PROTOCOL, PsamPackageError, PurchaseSession, SoftwarePsam } from './software-psam.js';
export type { OpenPsamOptions, PsamPackage } from './software-psam.js';
