/** Structural limits that the decoders enforce while they decode. */
export interface DecodeLimits {
  /** The deepest nesting of AnyValue arrays and kvlists accepted; deeper is a 400 (TooDeepError). */
  maxAnyValueDepth: number;
}

export const DEFAULT_DECODE_LIMITS: DecodeLimits = { maxAnyValueDepth: 32 };

/**
 * What a decoder saw, so that later stages can skip work: when no string is longer than a limit and
 * no item has more attributes than allowed, the attribute-limits processor has nothing to do.
 */
export interface DecodeStats {
  /** Longest string, in UTF-8 bytes (never fewer than its UTF-16 length). */
  longestString: number;
  /** Most attributes on one resource, scope or item. */
  mostAttributes: number;
}
