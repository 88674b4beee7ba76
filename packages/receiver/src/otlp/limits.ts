/** Structural limits that the decoders enforce while they decode. */
export interface DecodeLimits {
  /** The deepest nesting of AnyValue arrays and kvlists accepted; deeper is a 400 (TooDeepError). */
  maxAnyValueDepth: number;
  /**
   * The most structures (objects and lists) a request may decode into; more is a 400
   * (TooManyStructuresError), raised before the structure over the limit is built. Absent: no limit
   * (for data the receiver wrote itself). See STRUCTURES for what counts.
   */
  maxDecodedStructures?: number;
}

export const DEFAULT_DECODE_LIMITS: DecodeLimits = { maxAnyValueDepth: 32, maxDecodedStructures: 4_000_000 };

/**
 * What each decoded message counts against `maxDecodedStructures`: the objects and lists it is built
 * into, present in the request or not (an empty ResourceSpans is the ResourceSpans, its resource, the
 * resource's attribute list and its ScopeSpans list). Each costs some 40 to 80 bytes of heap once
 * decoded (measured), so the count bounds a request's decoded size whatever its wire size; and every
 * message on the wire costs at least 2 bytes, so without it a 64 MiB body could decode into
 * gigabytes. Repeated numbers (histogram buckets and bounds) count one per 8 values.
 */
export const STRUCTURES = {
  /** ResourceSpans/Metrics/Logs: itself, its list of scopes, its resource and the resource's attributes. */
  resource: 4,
  /** ScopeSpans/Metrics/Logs: itself, its list of items, its scope and the scope's attributes. */
  scope: 4,
  /** A span: itself, its attribute, event and link lists, its status. */
  span: 5,
  /** A span event or link: itself and its attribute list. */
  eventOrLink: 2,
  /** An attribute (KeyValue), or a value inside an AnyValue array. */
  value: 1,
  /** An AnyValue array or kvlist (the list, and the KeyValueList around a kvlist). */
  list: 2,
  /** A metric: itself, its data, its data point list and its metadata list. */
  metric: 4,
  /** A data point: itself, its attribute and exemplar lists (histograms also their buckets and bounds). */
  point: 5,
  /** An exemplar: itself and its attribute list; a summary quantile; a set of exponential buckets. */
  small: 2,
  /** A log record: itself and its attribute list (it is large: eleven fields). */
  logRecord: 3,
} as const;

/** The decoded size estimated per structure counted (see STRUCTURES), for memory admission. */
export const BYTES_PER_STRUCTURE = 64;

/**
 * What a decoder saw, so that later stages can skip work: when no string is longer than a limit and
 * no item has more attributes than allowed, the attribute-limits processor has nothing to do.
 */
export interface DecodeStats {
  /** Longest string, in UTF-8 bytes (never fewer than its UTF-16 length). */
  longestString: number;
  /** Most attributes on one resource, scope or item. */
  mostAttributes: number;
  /** Structures decoded, as counted against DecodeLimits.maxDecodedStructures (JSON fills this one too). */
  structures?: number;
}
