// The test page's OpenTelemetry SDK of the current release line (sdk-trace 3, exporter 0.301, as in
// test/package.json), bundled by esbuild in browser.test.ts. Its browser exporter always sends with
// fetch (keepalive, CORS mode, no credentials).
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';

globalThis.otelLatest = {
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
    const provider = new TracerProvider({
      resource: resourceFromAttributes({ 'service.name': 'browser-test' }),
      spanProcessors: [new SimpleSpanProcessor({ exporter })],
    });
    provider.getTracer('browser-test').startSpan(name).end();
    // A failed export is in `results`; forceFlush may reject for it too (sdk-trace 3 does).
    await provider.forceFlush().catch(() => {});
    await provider.shutdown().catch(() => {});
    return results;
  },
};
