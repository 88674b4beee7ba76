/**
 * The SDK's module state: one running SDK per process (start() sets it once), or disabled
 * (OTEL_SDK_DISABLED, or a start that failed). Read by flush/shutdown (lifecycle.ts) and status().
 */
import type { NodeSDK } from '@opentelemetry/sdk-node';
import type { Shipper } from './otlp-http';
import type { Gate } from './types';

export interface State {
  sdk: NodeSDK;
  shipper?: Shipper;
  /** Items dropped before they reached the receiver, by `<signal>|<reason>` (sonde.telemetry.dropped). */
  dropped: Map<string, number>;
  shutdownTimeoutMs: number;
  shuttingDown?: Promise<void>;
  /** Process listeners added by lifecycle.ts (removed before a signal is re-raised). */
  listeners: [string, (...args: unknown[]) => void][];
  /** The transmission gate, replaceable at run time (setTransmissionGate). */
  gateRef: { gate?: Gate };
  /** The provider of the start-up consent choice records (startup-consent.ts), if any were sent. */
  choicesProvider?: { shutdown(): Promise<void> };
}

export const sdkState: { current: State | undefined; disabled: boolean } = { current: undefined, disabled: false };
