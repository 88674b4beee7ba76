/**
 * Redaction before export with @sonde/redact, in the browser: its key rules and detectors (emails,
 * card numbers, IP addresses, bearer tokens, URL query secrets; URL attributes such as `url.full`
 * through its URL rules) on span and log attributes and log bodies. Default: @sonde/redact's defaults
 * (every detector, masks). Pseudonyms (`action: 'pseudonymize'`, `pseudonymize_keys`) are HMAC-SHA256
 * with WebCrypto: @sonde/redact's browser HMAC notes the values it has no pseudonym for yet, the
 * exporter computes them (asynchronously) and redacts again.
 */
import type { Attributes } from '@opentelemetry/api';
import { createRedactor, type RedactionConfig } from '@sonde/redact';
import { computePendingPseudonyms, hasPendingPseudonyms } from '@sonde/redact/dist/hmac.browser.js';

export type { RedactionConfig };

export interface WebRedaction {
  attributes(attrs: Attributes): Attributes;
  value(value: unknown): unknown;
  /** Whether the last redactions met values whose pseudonyms must be computed first. */
  pending(): boolean;
  compute(): Promise<void>;
}

export function createWebRedaction(config: RedactionConfig = {}): WebRedaction {
  const redactor = createRedactor(config);
  return {
    attributes: (attrs) => redactor.redactAttributes(attrs as Record<string, unknown>).attributes as Attributes,
    value: (value) => redactor.redactValue(value),
    pending: hasPendingPseudonyms,
    compute: computePendingPseudonyms,
  };
}
