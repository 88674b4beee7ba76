/**
 * OpenTelemetry → Prometheus naming rules (src/series/naming.ts), as tables.
 *
 * Sources of the expected values:
 * - spec: open-telemetry/opentelemetry-specification specification/compatibility/prometheus_and_openmetrics.md
 *   ("OTLP Metric points to Prometheus") and specification/common/README.md ("AnyValue representation for
 *   non-OTLP protocols", whose examples are used verbatim below);
 * - OTR-MN: prometheus/otlptranslator metric_namer_test.go @12673747f805280d3cc64fdbb72102a753baf2bc
 *   (TestMetricNamer_Build, UTF8Allowed=false / WithMetricSuffixes=true rows);
 * - OTR-MNB: prometheus/otlptranslator metric_name_builder_test.go @2503d045f8052b953f9b982b94bfb7f2184ba097
 *   (normalizeName / BuildCompliantMetricName with suffixes);
 * - OTR-UN: prometheus/otlptranslator unit_namer_test.go @c9bafb7d9cdcf18f037a8345818cf3632c60f415;
 * - OTR-LN: prometheus/otlptranslator label_namer_test.go @7f02967de0146dd86e31cd706fabe9081f22b2de (the
 *   default `LabelNamer{}` column) and its later revision with the `.foo` row;
 * - collector: open-telemetry/opentelemetry-collector-contrib exporter/prometheusexporter/utils.go
 *   (`extractJob`, `extractInstance`).
 */
import { type AnyValue, type KeyValue, KeyValueList } from '../src/model/common';
import {
  counterFamilyName,
  escapeHelp,
  escapeLabelValue,
  jobAndInstance,
  labelName,
  labelsFromAttributes,
  labelValue,
  metricName,
  type PromType,
} from '../src/series/naming';

type NameRow = [name: string, unit: string, type: PromType, expected: string];

describe('metricName', () => {
  // Every entry of the main unit map, on a gauge (OTR-MN "metric with … unit" rows; `s` from its histogram row).
  test.each<NameRow>([
    ['request_duration', 's', 'histogram', 'request_duration_seconds'],
    ['response_time', 'ms', 'gauge', 'response_time_milliseconds'],
    ['latency', 'us', 'gauge', 'latency_microseconds'],
    ['precision_time', 'ns', 'gauge', 'precision_time_nanoseconds'],
    ['timeout', 'min', 'gauge', 'timeout_minutes'],
    ['duration', 'h', 'gauge', 'duration_hours'],
    ['uptime', 'd', 'gauge', 'uptime_days'],
    ['memory_usage', 'By', 'gauge', 'memory_usage_bytes'],
    ['transfer', 'KBy', 'gauge', 'transfer_kilobytes'],
    ['download', 'MBy', 'gauge', 'download_megabytes'],
    ['backup', 'GBy', 'gauge', 'backup_gigabytes'],
    ['archive', 'TBy', 'gauge', 'archive_terabytes'],
    ['cache_size', 'KiBy', 'gauge', 'cache_size_kibibytes'],
    ['memory', 'MiBy', 'gauge', 'memory_mebibytes'],
    ['storage', 'GiBy', 'gauge', 'storage_gibibytes'],
    ['capacity', 'TiBy', 'gauge', 'capacity_tibibytes'],
    ['distance', 'm', 'gauge', 'distance_meters'],
    ['voltage', 'V', 'gauge', 'voltage_volts'],
    ['current', 'A', 'gauge', 'current_amperes'],
    ['energy', 'J', 'gauge', 'energy_joules'],
    ['power', 'W', 'gauge', 'power_watts'],
    ['weight', 'g', 'gauge', 'weight_grams'],
    ['temperature', 'Cel', 'gauge', 'temperature_celsius'],
    ['frequency', 'Hz', 'gauge', 'frequency_hertz'],
    ['cpu_usage', '%', 'gauge', 'cpu_usage_percent'],
    ['cpu_usage', '1', 'gauge', 'cpu_usage_ratio'],
    ['custom_metric', 'custom_unit', 'gauge', 'custom_metric_custom_unit'],
  ])('unit map: %s [%s] %s → %s', (name, unit, type, expected) => {
    expect(metricName(name, unit, type)).toBe(expected);
  });

  // Per units (OTR-MN per-unit rows, OTR-MNB TestPer / TestOTelReceivers, OTR-UN).
  test.each<NameRow>([
    ['requests', '1/s', 'gauge', 'requests_per_second'],
    ['requests', '1/m', 'gauge', 'requests_per_minute'],
    ['events', '1/h', 'gauge', 'events_per_hour'],
    ['transactions', '1/d', 'gauge', 'transactions_per_day'],
    ['reports', '1/w', 'gauge', 'reports_per_week'],
    ['invoices', '1/mo', 'gauge', 'invoices_per_month'],
    ['renewals', '1/y', 'gauge', 'renewals_per_year'],
    ['custom', '1/custom_unit', 'gauge', 'custom_per_custom_unit'],
    ['throughput', 'By/s', 'gauge', 'throughput_bytes_per_second'],
    ['mongodbatlas.process.oplog.rate', 'GiBy/h', 'gauge', 'mongodbatlas_process_oplog_rate_gibibytes_per_hour'],
    ['astro.light.speed_limit', 'm/s', 'gauge', 'astro_light_speed_limit_meters_per_second'],
    ['broken.metric.speed', 'km/h', 'gauge', 'broken_metric_speed_km_per_hour'],
    ['system.io', 'foo/bar', 'counter', 'system_io_foo_per_bar_total'],
    ['requests', '1/s', 'counter', 'requests_per_second_total'],
    ['metric', ' By / s ', 'gauge', 'metric_bytes_per_second'],
    ['metric', 'By/', 'gauge', 'metric_bytes'],
    ['metric', '/', 'gauge', 'metric'],
    ['metric', '/s', 'gauge', 'metric_per_second'],
    ['broken.metric.speed', 'km/°', 'gauge', 'broken_metric_speed_km'],
    ['custom_metric', 'unit@with#special/chars', 'gauge', 'custom_metric_unit_with_special_per_chars'],
    ['system.network.dropped', 'non/standard:_1', 'gauge', 'system_network_dropped_non_per_standard:_1'],
    // Units are matched against single name tokens, so a `per_…` unit (two tokens) is always appended, even
    // when the name already ends with it, while a one-token main unit is not (as otlptranslator).
    ['requests_per_second', '1/s', 'gauge', 'requests_per_second_per_second'],
    ['bytes_per_second', 'By/s', 'gauge', 'bytes_per_second_per_second'],
    ['speed_per_hour', 'km/h', 'gauge', 'speed_per_hour_km_per_hour'],
  ])('per unit: %s [%s] %s → %s', (name, unit, type, expected) => {
    expect(metricName(name, unit, type)).toBe(expected);
  });

  // `{…}` annotations are dropped (spec; OTR-MN, OTR-MNB TestNonStandardUnit / TestOTelReceivers, OTR-UN).
  test.each<NameRow>([
    ['custom_metric', '{custom}', 'gauge', 'custom_metric'],
    ['custom_metric', 'By/{custom}', 'gauge', 'custom_metric_bytes'],
    ['system.network.dropped', '{packets}', 'gauge', 'system_network_dropped'],
    ['system.network.dropped', '{packets}', 'counter', 'system_network_dropped_total'],
    ['http.server.requests', '{req}/s', 'gauge', 'http_server_requests_per_second'],
    [
      'active_directory.ds.replication.object.rate',
      '{objects}/s',
      'gauge',
      'active_directory_ds_replication_object_rate_per_second',
    ],
    ['bigip.virtual_server.request.count', '{requests}', 'counter', 'bigip_virtual_server_request_count_total'],
    [
      'mongodbatlas.process.db.query_targeting.scanned_per_returned',
      '{scanned}/{returned}',
      'gauge',
      'mongodbatlas_process_db_query_targeting_scanned_per_returned',
    ],
    ['queue.size', 'By{x}', 'gauge', 'queue_size'],
  ])('annotation: %s [%s] %s → %s', (name, unit, type, expected) => {
    expect(metricName(name, unit, type)).toBe(expected);
  });

  // `1`: `_ratio` on gauges only (OTR-MN, OTR-MNB TestRatio / TestOTelReceivers).
  test.each<NameRow>([
    ['system.cpu.utilization', '1', 'gauge', 'system_cpu_utilization_ratio'],
    ['system.cpu.load_average.15m', '1', 'gauge', 'system_cpu_load_average_15m_ratio'],
    ['hw.fan.speed_ratio', '1', 'gauge', 'hw_fan_speed_ratio'],
    ['cpu_usage_ratio', '1', 'gauge', 'cpu_usage_ratio'],
    ['ratio.of.things', '1', 'gauge', 'of_things_ratio'],
    ['items', '1', 'counter', 'items_total'],
    ['apache.requests', '1', 'counter', 'apache_requests_total'],
    ['http.requests', '1', 'counter', 'http_requests_total'],
    ['queue.fill', '1', 'histogram', 'queue_fill'],
    ['queue.fill', '1', 'summary', 'queue_fill'],
    ['requests', '1/s', 'gauge', 'requests_per_second'],
    ['loose', ' 1 ', 'gauge', 'loose'],
  ])('unit 1: %s [%s] %s → %s', (name, unit, type, expected) => {
    expect(metricName(name, unit, type)).toBe(expected);
  });

  // No suffix added twice; `_total` moved to the end (OTR-MN, OTR-MNB TestByteCounter / TestBrokenUnit / TestPercent).
  test.each<NameRow>([
    ['http.server.duration', 's', 'histogram', 'http_server_duration_seconds'],
    ['request_duration_seconds', 's', 'histogram', 'request_duration_seconds'],
    ['response_time_seconds', 's', 'gauge', 'response_time_seconds'],
    ['system.cpu.time', 's', 'counter', 'system_cpu_time_seconds_total'],
    ['system.disk.operation_time', 's', 'counter', 'system_disk_operation_time_seconds_total'],
    ['foo_total', '', 'counter', 'foo_total'],
    ['requests_total', '', 'counter', 'requests_total'],
    ['network_transmitted_bytes_total', 'By', 'counter', 'network_transmitted_bytes_total'],
    ['system.io', 'By', 'counter', 'system_io_bytes_total'],
    ['total.requests', '', 'counter', 'requests_total'],
    ['foo_total_bar', '', 'counter', 'foo_bar_total'],
    ['foo_total', 's', 'counter', 'foo_seconds_total'],
    ['total_total', '', 'counter', 'total'],
    ['foo_total', '', 'gauge', 'foo_total'],
    ['foo_total', '', 'histogram', 'foo_total'],
    ['requests', '', 'counter', 'requests_total'],
    ['active_connections', '', 'gauge', 'active_connections'],
    ['system.network.packets.dropped', 'packets', 'gauge', 'system_network_packets_dropped'],
    ['system.network.packets', 'packets', 'counter', 'system_network_packets_total'],
    ['system.network.dropped', 'packets', 'counter', 'system_network_dropped_packets_total'],
    ['apache.current_connections', 'connections', 'gauge', 'apache_current_connections'],
    ['apache.workers', 'connections', 'gauge', 'apache_workers_connections'],
    ['broken.metric.success_ratio', '%', 'gauge', 'broken_metric_success_ratio_percent'],
    ['broken.metric.success_percent', '%', 'gauge', 'broken_metric_success_percent'],
    ['memcached.operation_hit_ratio', '%', 'gauge', 'memcached_operation_hit_ratio_percent'],
  ])('suffixes: %s [%s] %s → %s', (name, unit, type, expected) => {
    expect(metricName(name, unit, type)).toBe(expected);
  });

  // Leading digits (OTR-MN, OTR-MNB TestBuildCompliantMetricNameWithSuffixes).
  test.each<NameRow>([
    ['123metric', '', 'gauge', '_123metric'],
    ['3.14 digits', '', 'gauge', '_3_14_digits'],
    ['123_requests', '', 'counter', '_123_requests_total'],
    ['.9lives', 's', 'gauge', '_9lives_seconds'],
    ['a9', '', 'gauge', 'a9'],
  ])('leading digit: %s [%s] %s → %s', (name, unit, type, expected) => {
    expect(metricName(name, unit, type)).toBe(expected);
  });

  // Invalid characters, runs of `_`, leading/trailing underscores, colons (spec; OTR-MN, OTR-MNB).
  test.each<NameRow>([
    ['metric@with#special$chars', '', 'gauge', 'metric_with_special_chars'],
    ['metric@@##$$name', '', 'gauge', 'metric_name'],
    ['envoy__rule_engine_zlib_buf_error', '', 'gauge', 'envoy_rule_engine_zlib_buf_error'],
    [
      'metric__with__multiple__underscores',
      'unit__multiple__underscores',
      'gauge',
      'metric_with_multiple_underscores_unit_multiple_underscores',
    ],
    ['metric_with_字符_foreign_characters', '', 'counter', 'metric_with_foreign_characters_total'],
    ['emoji😀name', '', 'gauge', 'emoji_name'],
    ['_leading.and.trailing_', '', 'gauge', 'leading_and_trailing'],
    ['\t system.filesystem.usage       ', '  By\t', 'gauge', 'system_filesystem_usage_bytes'],
    [':foo::bar', '', 'gauge', ':foo::bar'],
    [':foo::bar', '', 'counter', ':foo::bar_total'],
    ['system.network.dropped', 'nonstandard:_1', 'gauge', 'system_network_dropped_nonstandard:_1'],
    ['temperature', '%*()°:C', 'gauge', 'temperature_:C'],
    ['test.metric.spaces', '   \t  ', 'gauge', 'test_metric_spaces'],
    ['@#$%', '', 'gauge', ''],
    ['', '', 'gauge', ''],
    ['___', '', 'summary', ''],
    ['@#$%', '', 'counter', 'total'],
    ['@#$%', 's', 'gauge', 'seconds'],
  ])('characters: %j [%j] %s → %j', (name, unit, type, expected) => {
    expect(metricName(name, unit, type)).toBe(expected);
  });

  // Go's strings.TrimSpace trims NEL (U+0085) but not BOM (U+FEFF) — the reverse of JS String.prototype.trim.
  test.each<NameRow>([
    ['latency', '\u0085s', 'gauge', 'latency_seconds'],
    ['latency', '\uFEFFs', 'gauge', 'latency_s'],
    ['latency', '\u3000ms\u2028', 'gauge', 'latency_milliseconds'],
  ])('unit trimming: %s [%j] %s → %s', (name, unit, type, expected) => {
    expect(metricName(name, unit, type)).toBe(expected);
  });

  // A main unit ending in `_` keeps it on gauges (as otlptranslator) but never doubles it before `_total`
  // (deviation: otlptranslator would give `volume_m__total`, which the spec's collapse rule forbids).
  test.each<NameRow>([
    ['volume', 'm³', 'gauge', 'volume_m_'],
    ['volume', 'm³', 'counter', 'volume_m_total'],
    ['volume', 'm³/s', 'gauge', 'volume_m_per_second'],
    ['volume', 'm³', 'histogram', 'volume_m_'],
  ])('trailing unit underscore: %s [%s] %s → %s', (name, unit, type, expected) => {
    expect(metricName(name, unit, type)).toBe(expected);
  });

  test('unit names that are Object.prototype keys are not looked up on the prototype', () => {
    expect(metricName('x', 'constructor', 'gauge')).toBe('x_constructor');
    expect(metricName('x', '1/toString', 'gauge')).toBe('x_per_toString');
  });
});

describe('counterFamilyName', () => {
  test.each([
    ['http_requests_total', 'http_requests'],
    ['system_cpu_time_seconds_total', 'system_cpu_time_seconds'],
    ['foo', 'foo'],
    ['total', 'total'],
    ['a_total_total', 'a_total'],
    ['foo_totals', 'foo_totals'],
  ])('%s → %s', (name, expected) => {
    expect(counterFamilyName(name)).toBe(expected);
  });

  test('of metricName output', () => {
    expect(counterFamilyName(metricName('system.cpu.time', 's', 'counter'))).toBe('system_cpu_time_seconds');
    expect(counterFamilyName(metricName('foo_total', '', 'counter'))).toBe('foo');
  });
});

describe('labelName', () => {
  // OTR-LN labelTestCases, default (collapsing, no `key` for a single leading `_`) column.
  test.each([
    ['label:with:colons', 'label_with_colons'],
    ['LabelWithCapitalLetters', 'LabelWithCapitalLetters'],
    ['label!with&special$chars)', 'label_with_special_chars_'],
    ['label_with_foreign_characters_字符', 'label_with_foreign_characters_'],
    ['label.with.dots', 'label_with_dots'],
    ['.foo', '_foo'],
    ['123label', 'key_123label'],
    ['_label_starting_with_underscore', '_label_starting_with_underscore'],
    ['__label_starting_with_2underscores', '_label_starting_with_2underscores'],
    ['ようこそ', ''],
    ['label__with__double__underscores', 'label_with_double_underscores'],
    ['label.name__with&&special##chars', 'label_name_with_special_chars'],
    ['__reserved__label__name__', '__reserved_label_name__'],
    ['trailing_underscores___', 'trailing_underscores_'],
    ['', ''],
    ['__', ''],
    ['regular label', 'regular_label'],
  ])('otlptranslator: %j → %j', (key, expected) => {
    expect(labelName(key)).toBe(expected);
  });

  test.each([
    ['http.request.method', 'http_request_method'],
    ['service.name', 'service_name'],
    ['__name__', '__name__'],
    ['__address__', '__address__'],
    ['__meta.x-y__', '__meta_x_y__'],
    ['___a___', '___a___'],
    ['__9x__', '__9x__'],
    ['__', ''],
    ['_', ''],
    ['___', ''],
    ['____', ''],
    ['_____', ''],
    ['..', ''],
    ['9', 'key_9'],
    ['9.a', 'key_9_a'],
    ['.9', '_9'],
    ['a😀b', 'a_b'],
    ['a:b', 'a_b'],
    ['le', 'le'],
  ])('more: %j → %j', (key, expected) => {
    expect(labelName(key)).toBe(expected);
  });

  test('a clean key comes back as the same string', () => {
    const key = 'http_method_total';
    expect(labelName(key)).toBe(key);
  });
});

function bytes(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'utf8'));
}

function kvlist(entries: [string, AnyValue][]): KeyValueList {
  return new KeyValueList(entries.map(([key, value]) => ({ key, value })));
}

describe('labelValue', () => {
  test.each<[string, AnyValue, string]>([
    ['string', 'hello world', 'hello world'],
    ['empty string', '', ''],
    ['string with quotes and newline, unescaped', 'a "q"\nb\\', 'a "q"\nb\\'],
    ['true', true, 'true'],
    ['false', false, 'false'],
    ['int', 42n, '42'],
    ['negative int', -123n, '-123'],
    ['int64 max', 9223372036854775807n, '9223372036854775807'],
    ['int64 min', -9223372036854775808n, '-9223372036854775808'],
    ['double', 0.0015, '0.0015'],
    ['double 1.23e10', 1.23e10, '12300000000'],
    ['double 1e21', 1e21, '1e+21'],
    ['double 1e-7', 1e-7, '1e-7'],
    ['double 0.1+0.2', 0.1 + 0.2, '0.30000000000000004'],
    ['whole double', 5, '5'],
    ['negative double', -2.5, '-2.5'],
    ['negative zero', -0, '0'],
    ['NaN', Number.NaN, 'NaN'],
    ['Infinity', Number.POSITIVE_INFINITY, 'Infinity'],
    ['-Infinity', Number.NEGATIVE_INFINITY, '-Infinity'],
    ['bytes', bytes('hello world'), 'aGVsbG8gd29ybGQ='],
    ['empty bytes', new Uint8Array(0), ''],
    ['Buffer', Buffer.from('hi'), 'aGk='],
    ['empty value', undefined, ''],
    ['empty array', [], '[]'],
    // The spec's array example.
    [
      'spec array',
      [1n, Number.NEGATIVE_INFINITY, 'a', true, kvlist([['nested', bytes('hello world')]])],
      '[1,"-Infinity","a",true,{"nested":"aGVsbG8gd29ybGQ="}]',
    ],
    ['empty map', new KeyValueList([]), '{}'],
    // The spec's map example.
    [
      'spec map',
      kvlist([
        ['a', Number.NEGATIVE_INFINITY],
        ['b', 2n],
        ['c', [3n, undefined]],
      ]),
      '{"a":"-Infinity","b":2,"c":[3,null]}',
    ],
    [
      'map keys sorted',
      kvlist([
        ['b', 1n],
        ['a', 2n],
        ['C', 3n],
      ]),
      '{"C":3,"a":2,"b":1}',
    ],
    [
      'duplicate map key: last wins',
      kvlist([
        ['a', 1n],
        ['b', true],
        ['a', 2n],
      ]),
      '{"a":2,"b":true}',
    ],
    ['strings in arrays are JSON strings', ['he said "hi"\n', 'é', ''], '["he said \\"hi\\"\\n","é",""]'],
    ['doubles in arrays', [2.5, 1e21, -0, Number.NaN, Number.POSITIVE_INFINITY], '[2.5,1e+21,0,"NaN","Infinity"]'],
    ['nested arrays', [[1.5, false], [], [undefined]], '[[1.5,false],[],[null]]'],
    ['bytes in a map', kvlist([['k', new Uint8Array(0)]]), '{"k":""}'],
    ['map key needing escapes', kvlist([['a"b\\', 'v']]), '{"a\\"b\\\\":"v"}'],
    [
      'map keys in code-point order',
      kvlist([
        ['\u{1F600}', 1n],
        ['\uFF61', 2n],
      ]),
      '{"\uFF61":2,"\u{1F600}":1}',
    ],
  ])('%s', (_, value, expected) => {
    expect(labelValue(value)).toBe(expected);
  });

  test('bytes: only the view, not its whole buffer', () => {
    const backing = Buffer.from('xxhixx');
    expect(labelValue(new Uint8Array(backing.buffer, backing.byteOffset + 2, 2))).toBe('aGk=');
  });
});

function attrs(entries: [string, AnyValue][]): KeyValue[] {
  return entries.map(([key, value]) => ({ key, value }));
}

describe('labelsFromAttributes', () => {
  test.each<[string, [string, AnyValue][], [string, string][]]>([
    ['none', [], []],
    [
      'sorted by label name',
      [
        ['zeta', 'z'],
        ['alpha', 'a'],
        ['http.method', 'GET'],
      ],
      [
        ['alpha', 'a'],
        ['http_method', 'GET'],
        ['zeta', 'z'],
      ],
    ],
    // Spec: values joined with `;` in the lexicographical order of the original keys ('.' < ':' < '_').
    [
      'collision joined in key order',
      [
        ['a_b', 'underscore'],
        ['a:b', 'colon'],
        ['a.b', 'dot'],
      ],
      [['a_b', 'dot;colon;underscore']],
    ],
    [
      'collision with a non-colliding label between',
      [
        ['b', '2'],
        ['a.x', 'dot'],
        ['a-x', 'dash'],
      ],
      [
        ['a_x', 'dash;dot'],
        ['b', '2'],
      ],
    ],
    // Code-point order (Go), not UTF-16 order: U+FF61 < U+1F600, though its UTF-16 unit 0xFF61 > 0xD83D.
    [
      'collision ordered by code point',
      [
        ['k\u{1F600}', 'astral'],
        ['k\uFF61', 'bmp'],
      ],
      [['k_', 'bmp;astral']],
    ],
    [
      'colliding run of underscores',
      [
        ['a__b', 'two'],
        ['a_b', 'one'],
      ],
      [['a_b', 'two;one']],
    ],
    [
      'empty value dropped',
      [
        ['a', ''],
        ['b', 'x'],
      ],
      [['b', 'x']],
    ],
    [
      'empty AnyValue dropped',
      [
        ['a', undefined],
        ['b', 'x'],
      ],
      [['b', 'x']],
    ],
    [
      'empty bytes and empty array',
      [
        ['bytes', new Uint8Array(0)],
        ['list', []],
      ],
      [['list', '[]']],
    ],
    [
      'collision with an empty value keeps the separator',
      [
        ['a.b', ''],
        ['a_b', 'x'],
      ],
      [['a_b', ';x']],
    ],
    [
      'collision of empty values is still non-empty',
      [
        ['a.b', ''],
        ['a_b', ''],
      ],
      [['a_b', ';']],
    ],
    [
      'unrepresentable keys dropped',
      [
        ['', 'e'],
        ['ようこそ', 'jp'],
        ['__', 'u'],
        ['ok', 'y'],
      ],
      [['ok', 'y']],
    ],
    [
      '__name__-style keys kept, __x collapsed',
      [
        ['__name__', 'n'],
        ['__foo', 'f'],
        ['_bar', 'b'],
      ],
      [
        ['__name__', 'n'],
        ['_bar', 'b'],
        ['_foo', 'f'],
      ],
    ],
    ['leading digit', [['2xx', 'ok']], [['key_2xx', 'ok']]],
    [
      'non-string values',
      [
        ['n', 7n],
        ['d', 0.5],
        ['t', true],
        ['l', ['x', 1n]],
        ['m', kvlist([['k', 'v']])],
      ],
      [
        ['d', '0.5'],
        ['l', '["x",1]'],
        ['m', '{"k":"v"}'],
        ['n', '7'],
        ['t', 'true'],
      ],
    ],
    [
      'duplicate identical keys joined in input order',
      [
        ['k', 'first'],
        ['k', 'second'],
      ],
      [['k', 'first;second']],
    ],
  ])('%s', (_, input, expected) => {
    expect(labelsFromAttributes(attrs(input))).toEqual(expected);
  });
});

describe('jobAndInstance', () => {
  test.each<[string, [string, AnyValue][], string, string]>([
    ['name only', [['service.name', 'checkout']], 'checkout', ''],
    [
      'namespace and name',
      [
        ['service.namespace', 'shop'],
        ['service.name', 'checkout'],
      ],
      'shop/checkout',
      '',
    ],
    [
      'order of attributes does not matter',
      [
        ['service.name', 'checkout'],
        ['service.namespace', 'shop'],
      ],
      'shop/checkout',
      '',
    ],
    [
      'empty namespace → name alone (spec)',
      [
        ['service.namespace', ''],
        ['service.name', 'checkout'],
      ],
      'checkout',
      '',
    ],
    ['namespace without name → no job', [['service.namespace', 'shop']], '', ''],
    ['neither', [['host.name', 'h1']], '', ''],
    ['no attributes', [], '', ''],
    [
      'instance id',
      [
        ['service.name', 'checkout'],
        ['service.instance.id', 'pod-7'],
      ],
      'checkout',
      'pod-7',
    ],
    ['instance id without name', [['service.instance.id', 'pod-7']], '', 'pod-7'],
    [
      'non-string values',
      [
        ['service.name', 12n],
        ['service.instance.id', 42n],
      ],
      '12',
      '42',
    ],
    [
      'empty name with namespace',
      [
        ['service.namespace', 'shop'],
        ['service.name', ''],
      ],
      'shop/',
      '',
    ],
    ['SDK default name kept as is', [['service.name', 'unknown_service:node']], 'unknown_service:node', ''],
    [
      'first of duplicate keys',
      [
        ['service.name', 'a'],
        ['service.name', 'b'],
      ],
      'a',
      '',
    ],
  ])('%s', (_, input, job, instance) => {
    expect(jobAndInstance(attrs(input))).toEqual({ job, instance });
  });
});

describe('escaping', () => {
  test.each([
    ['plain', 'plain'],
    ['', ''],
    ['a\\b', 'a\\\\b'],
    ['say "hi"', 'say \\"hi\\"'],
    ['line1\nline2', 'line1\\nline2'],
    ['tab\tcr\r', 'tab\tcr\r'],
    ['\\"\n', '\\\\\\"\\n'],
    ['\\n', '\\\\n'],
  ])('escapeLabelValue(%j) → %j', (input, expected) => {
    expect(escapeLabelValue(input)).toBe(expected);
  });

  test.each([
    ['plain', 'plain'],
    ['a\\b', 'a\\\\b'],
    ['say "hi"', 'say "hi"'],
    ['line1\nline2', 'line1\\nline2'],
    ['\\"\n', '\\\\"\\n'],
  ])('escapeHelp(%j) → %j', (input, expected) => {
    expect(escapeHelp(input)).toBe(expected);
  });

  test('unescaped strings come back as the same string', () => {
    const v = 'no specials here';
    expect(escapeLabelValue(v)).toBe(v);
    expect(escapeHelp(v)).toBe(v);
  });
});
