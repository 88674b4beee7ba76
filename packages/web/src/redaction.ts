/** Redaction before export (filled in by @sonde/redact's browser entry). */
import type { Attributes } from '@opentelemetry/api';

export type RedactionConfig = Record<string, unknown>;

export function createWebRedaction(_config?: RedactionConfig): ((attrs: Attributes) => Attributes) | undefined {
  return undefined;
}
