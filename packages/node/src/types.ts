/**
 * The vocabulary the export path shares (the exporters, the shipper, the buffer, the SDK wiring):
 * signals, drop reasons and the transmission gate. It imports nothing, so that buffer.ts and
 * otlp-http.ts both depend on it instead of on each other.
 */
export type Signal = 'traces' | 'metrics' | 'logs';
export const SIGNALS: Signal[] = ['traces', 'metrics', 'logs'];

/** Why telemetry was dropped before it reached the receiver (`sonde.telemetry.dropped{reason}`). */
export type DropReason = 'buffer_full' | 'rejected' | 'shutdown' | 'encode_failed';

/** The host's transmission gate: while it returns false, telemetry is held in the buffer. */
export type Gate = () => boolean | Promise<boolean>;
