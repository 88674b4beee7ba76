/**
 * @sonde/redact: one redaction model for the Sonde SDK and the Sonde receiver. Attribute keys are
 * kept, dropped or pseudonymized by allow/block lists; string values go through detectors (emails,
 * payment card numbers, IP addresses, bearer tokens and JWTs, secrets in query strings) and what
 * they find is masked or replaced by a keyed HMAC-SHA256 pseudonym.
 */
export {
  DEFAULT_BLOCK_KEYS,
  DETECTORS,
  type Detector,
  MIN_HMAC_KEY_LENGTH,
  parseRedactionConfig,
  type RedactionConfig,
  RedactionConfigError,
} from './config';
export { isCardNumber, luhn, URL_SECRET_PARAMS } from './detectors';
export {
  createRedactor,
  type KeyAction,
  PSEUDONYM_LENGTH,
  pseudonymKey,
  type Redactor,
  URL_KEYS,
} from './redactor';
