/**
 * A misbehaving OTLP client next to the shop, so that the receiver's refusal, limit and drop counters
 * (the Pipeline health dashboard, the pipeline alerts) have real data: what a broken or misconfigured
 * exporter really sends. Every `intervalMs` it posts, over OTLP/HTTP:
 *
 * - a body that is not protobuf → 400, `sonde_receiver_refused_requests_total{reason="malformed"}`;
 * - spans, one without a trace id (rejected in a partial success) and one with a 10 KB attribute
 *   value (truncated: `sonde_receiver_limit_hits_total{limit="max_attribute_value_length"}`) and an
 *   email address (masked: `sonde_receiver_redactions_total{signal="traces"}`);
 * - a metric without a name (rejected) and a non-monotonic delta sum (dropped:
 *   `sonde_prometheus_dropped_points_total{reason="non_monotonic_delta"}`);
 * - `logRecordsPerBurst` log records, one more than the receiver's `limits.max_items_per_request` when
 *   the test configures it so (the excess is rejected).
 */
import { randomBytes } from 'node:crypto';

export interface MisbehavingClientOptions {
  /** OTLP/HTTP base URL of the receiver. */
  otlpEndpoint: string;
  intervalMs?: number;
  logRecordsPerBurst: number;
}

const resource = {
  attributes: [
    { key: 'service.name', value: { stringValue: 'legacy-batch' } },
    { key: 'service.namespace', value: { stringValue: 'sonde-demo' } },
  ],
};

const hex = (bytes: number) => randomBytes(bytes).toString('hex');

function post(url: string, contentType: string, body: string | Buffer): Promise<void> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body,
    signal: AbortSignal.timeout(5000),
  })
    .then((res) => res.arrayBuffer())
    .then(() => undefined);
}

export function startMisbehavingClient(options: MisbehavingClientOptions): { stop(): Promise<void> } {
  const base = options.otlpEndpoint.replace(/\/$/, '');
  const send = async () => {
    const now = BigInt(Date.now()) * 1_000_000n;
    await Promise.allSettled([
      post(`${base}/v1/traces`, 'application/x-protobuf', Buffer.from('this is not protobuf')),
      post(
        `${base}/v1/traces`,
        'application/json',
        JSON.stringify({
          resourceSpans: [
            {
              resource,
              scopeSpans: [
                {
                  spans: [
                    { traceId: '', spanId: hex(8), name: 'nightly export', kind: 1 },
                    {
                      traceId: hex(16),
                      spanId: hex(8),
                      name: 'nightly export',
                      kind: 1,
                      startTimeUnixNano: String(now - 5_000_000n),
                      endTimeUnixNano: String(now),
                      attributes: [
                        { key: 'export.payload', value: { stringValue: 'x'.repeat(10_000) } },
                        // A service without Sonde's SDK sends an email in clear: the receiver's redaction masks it.
                        { key: 'export.owner', value: { stringValue: 'ops-team@example.com' } },
                      ],
                    },
                  ],
                },
              ],
            },
          ],
        }),
      ),
      post(
        `${base}/v1/metrics`,
        'application/json',
        JSON.stringify({
          resourceMetrics: [
            {
              resource,
              scopeMetrics: [
                {
                  metrics: [
                    { name: '', gauge: { dataPoints: [{ timeUnixNano: String(now), asDouble: 1 }] } },
                    {
                      name: 'legacy.queue.depth.change',
                      sum: {
                        aggregationTemporality: 1,
                        isMonotonic: false,
                        dataPoints: [
                          { startTimeUnixNano: String(now - 1_000_000_000n), timeUnixNano: String(now), asDouble: -3 },
                        ],
                      },
                    },
                  ],
                },
              ],
            },
          ],
        }),
      ),
      post(
        `${base}/v1/logs`,
        'application/json',
        JSON.stringify({
          resourceLogs: [
            {
              resource,
              scopeLogs: [
                {
                  logRecords: Array.from({ length: options.logRecordsPerBurst }, (_, i) => ({
                    timeUnixNano: String(now),
                    severityNumber: 9,
                    body: { stringValue: `row ${i} exported` },
                  })),
                },
              ],
            },
          ],
        }),
      ),
    ]);
  };
  let running = send();
  const timer = setInterval(() => {
    running = running.then(send);
  }, options.intervalMs ?? 500);
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
