/** Structural limits that the decoders enforce while they decode. */
export interface DecodeLimits {
  /** The deepest nesting of AnyValue arrays and kvlists accepted; deeper is a 400 (TooDeepError). */
  maxAnyValueDepth: number;
}

export const DEFAULT_DECODE_LIMITS: DecodeLimits = { maxAnyValueDepth: 32 };
