/**
 * @sonde/node: one flag (`node --import @sonde/node/register app.js`) traces, measures and logs a
 * Node service over OTLP, with business events (`track`), consent per category, redaction before
 * export and deferred sending. See README.md.
 */
export {
  CATEGORIES,
  type Category,
  CHOICES,
  type Choice,
  type ChoiceMap,
  type ChoiceSource,
  CONSENT_CHOICE_EVENT,
  type ConsentMap,
  consent,
  consentContext,
  consentMiddleware,
  parseConsentList,
  type RecordOptions,
  withConsent,
} from './consent';
export { CONSENT_CATEGORY_ATTRIBUTE, type TrackOptions, track } from './events';
export {
  drainBuffer,
  flush,
  type SondeOptions,
  type SondeStatus,
  setTransmissionGate,
  shutdown,
  start,
  status,
  VERSION,
} from './sdk';
export { sanitizeSql, summarizeSql } from './sqlite';
export type { Gate } from './types';
