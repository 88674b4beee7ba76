/** OTLP log records mapped to Loki entries as Loki 3's OTLP intake maps them (stream labels, line, metadata). */
import { KeyValueList, type LogRecord, type ResourceLogs } from '../src';
import { detectedLevel, toLokiEntries } from '../src/log-store/loki-entry';

function record(extra: Partial<LogRecord> = {}): LogRecord {
  return {
    timeUnixNano: 1_700_000_000_000_000_001n,
    observedTimeUnixNano: 0n,
    severityNumber: 17,
    severityText: 'ERROR',
    body: 'payment failed',
    attributes: [{ key: 'http.route', value: '/pay' }],
    droppedAttributesCount: 0,
    flags: 0,
    traceId: '5b8efff798038103d269b633813fc60c',
    spanId: 'eee19b7ec3c1b174',
    eventName: '',
    ...extra,
  };
}

function request(resource: ResourceLogs['resource']['attributes'], records: LogRecord[]): ResourceLogs[] {
  return [
    {
      resource: { attributes: resource, droppedAttributesCount: 0 },
      scopeLogs: [
        {
          scope: { name: 'pino', version: '9.1', attributes: [], droppedAttributesCount: 0 },
          logRecords: records,
          schemaUrl: '',
        },
      ],
      schemaUrl: '',
    },
  ];
}

test('index labels from the resource, the rest as structured metadata, the body as the line', () => {
  const [e] = toLokiEntries(
    request(
      [
        { key: 'service.name', value: 'cart' },
        { key: 'deployment.environment.name', value: 'prod' },
        { key: 'host.name', value: 'web-1' },
      ],
      [record()],
    ),
    5n,
  );
  expect(e).toStrictEqual({
    timeNs: 1_700_000_000_000_000_001n,
    line: 'payment failed',
    stream: { service_name: 'cart', deployment_environment_name: 'prod' },
    metadata: {
      host_name: 'web-1',
      scope_name: 'pino',
      scope_version: '9.1',
      http_route: '/pay',
      severity_number: '17',
      severity_text: 'ERROR',
      trace_id: '5b8efff798038103d269b633813fc60c',
      span_id: 'eee19b7ec3c1b174',
      detected_level: 'error',
    },
  });
});

test('service_name falls back to another index label, else unknown_service', () => {
  const [a] = toLokiEntries(request([{ key: 'k8s.container.name', value: 'api' }], [record()]), 5n);
  expect(a.stream).toStrictEqual({ k8s_container_name: 'api', service_name: 'api' });
  const [b] = toLokiEntries(request([], [record()]), 5n);
  expect(b.stream).toStrictEqual({ service_name: 'unknown_service' });
});

test('the time falls back to the observed time, then the arrival time; a map body is JSON', () => {
  const body = new KeyValueList([{ key: 'msg', value: 'hi' }]);
  const [a, b] = toLokiEntries(
    request(
      [{ key: 'service.name', value: 's' }],
      [record({ timeUnixNano: 0n, observedTimeUnixNano: 7n, body }), record({ timeUnixNano: 0n })],
    ),
    9n,
  );
  expect([a.timeNs, b.timeNs]).toStrictEqual([7n, 9n]);
  expect(a.line).toBe('{"msg":"hi"}');
  expect(a.metadata.observed_timestamp).toBeUndefined();
});

test('detected_level: a level attribute (aliases folded), else the severity number, else unknown', () => {
  expect(detectedLevel({}, { level: 'WRN' }, { severityNumber: 17 })).toBe('warn');
  expect(detectedLevel({}, { level: 'notice' }, { severityNumber: 17 })).toBe('notice');
  expect(detectedLevel({}, {}, { severityNumber: 9 })).toBe('info');
  expect(detectedLevel({}, {}, { severityNumber: 21 })).toBe('fatal');
  expect(detectedLevel({}, {}, { severityNumber: 0 })).toBe('unknown');
});
