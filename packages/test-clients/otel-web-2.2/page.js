// The test page's OpenTelemetry web SDK of this release line (sdk-trace-web 2.2, exporter 0.208),
// bundled by esbuild in test/browser/browser.test.ts. Without `headers` the exporter sends with
// navigator.sendBeacon (its browser default); with `headers` (even `{}`) it sends with fetch.
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { SimpleSpanProcessor, WebTracerProvider } from '@opentelemetry/sdk-trace-web';

globalThis.otelWeb22 = {
  /** Exports one span named `name` to `url`; resolves with what the exporter reported to the SDK. */
  async exportSpan({ url, headers, name }) {
    const exporter = new OTLPTraceExporter({ url, headers, timeoutMillis: 2000 });
    const results = [];
    const original = exporter.export.bind(exporter);
    exporter.export = (spans, done) =>
      original(spans, (result) => {
        results.push({ code: result.code, error: result.error?.message });
        done(result);
      });
    const provider = new WebTracerProvider({
      resource: resourceFromAttributes({ 'service.name': 'browser-test' }),
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    provider.getTracer('browser-test').startSpan(name).end();
    // A failed export is in `results`; forceFlush may reject for it too (sdk-trace 3 does).
    await provider.forceFlush().catch(() => {});
    await provider.shutdown().catch(() => {});
    return results;
  },
};
