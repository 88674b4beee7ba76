/**
 * Protobuf decoding of every metric type, with the encodings an SDK may choose: packed and
 * unpacked repeated fields, zigzag offsets, optional sum/min/max, int and double values.
 */
import { decodeMetricsRequest } from '../src';
import { type Field, pb, withoutOffsets } from './helpers';

const LIMITS = { maxAnyValueDepth: 8 };
const T0 = 1700000000000000000n;
const T1 = 1700000010000000000n;

function request(metric: Field[]): Buffer {
  return pb([
    [
      1,
      'message',
      [
        [
          2,
          'message',
          [
            [
              1,
              'message',
              [
                [1, 'bytes', 'meter'],
                [2, 'bytes', '1.0'],
              ],
            ],
            [2, 'message', metric],
          ],
        ],
      ],
    ],
  ]);
}

function packedFixed64(values: number[]): Uint8Array {
  const b = Buffer.alloc(values.length * 8);
  for (const [i, v] of values.entries()) b.writeBigUInt64LE(BigInt(v), i * 8);
  return b;
}

function packedDoubles(values: number[]): Uint8Array {
  const b = Buffer.alloc(values.length * 8);
  for (const [i, v] of values.entries()) b.writeDoubleLE(v, i * 8);
  return b;
}

function decodeOne(metric: Field[]) {
  const [rm] = decodeMetricsRequest(request(metric), LIMITS);
  expect(rm.scopeMetrics[0].scope).toMatchObject({ name: 'meter', version: '1.0' });
  return withoutOffsets(rm.scopeMetrics[0].metrics[0]);
}

const point = (extra: Field[]): Field[] => [[2, 'fixed64', T0], [3, 'fixed64', T1], ...extra];

describe('protobuf metrics decoding', () => {
  test('monotonic cumulative sum with an int value and an exemplar', () => {
    const m = decodeOne([
      [1, 'bytes', 'http.requests'],
      [2, 'bytes', 'requests served'],
      [3, 'bytes', '{request}'],
      [
        7,
        'message',
        [
          [
            1,
            'message',
            point([
              [6, 'fixed64', 42n],
              [
                7,
                'message',
                [
                  [1, 'bytes', 'route'],
                  [2, 'message', [[1, 'bytes', '/a']]],
                ],
              ],
              [
                5,
                'message',
                [
                  [2, 'fixed64', T1],
                  [6, 'fixed64', BigInt.asUintN(64, -3n)],
                  [4, 'bytes', Buffer.alloc(8, 1)],
                  [5, 'bytes', Buffer.alloc(16, 2)],
                ],
              ],
            ]),
          ],
          [2, 'varint', 2],
          [3, 'varint', 1],
        ],
      ],
    ]);
    expect(m).toMatchObject({ name: 'http.requests', description: 'requests served', unit: '{request}' });
    expect(m.data).toEqual({
      type: 'sum',
      aggregationTemporality: 2,
      isMonotonic: true,
      dataPoints: [
        {
          attributes: [{ key: 'route', value: '/a' }],
          startTimeUnixNano: T0,
          timeUnixNano: T1,
          exemplars: [
            {
              filteredAttributes: [],
              timeUnixNano: T1,
              value: -3,
              isInt: true,
              spanId: '01'.repeat(8),
              traceId: '02'.repeat(16),
            },
          ],
          flags: 0,
          value: 42,
          isInt: true,
        },
      ],
    });
  });

  test('gauge with a double value and the no-recorded-value flag', () => {
    const m = decodeOne([
      [1, 'bytes', 'temp'],
      [
        5,
        'message',
        [
          [
            1,
            'message',
            point([
              [4, 'double', -1.25],
              [8, 'varint', 1],
            ]),
          ],
        ],
      ],
    ]);
    expect(m.data).toMatchObject({ type: 'gauge', dataPoints: [{ value: -1.25, isInt: false, flags: 1 }] });
  });

  test.each([
    [
      'packed',
      [
        [6, 'bytes', packedFixed64([1, 2, 3])],
        [7, 'bytes', packedDoubles([0.1, 1])],
      ] as Field[],
    ],
    [
      'unpacked',
      [
        [6, 'fixed64', 1n],
        [6, 'fixed64', 2n],
        [6, 'fixed64', 3n],
        [7, 'double', 0.1],
        [7, 'double', 1],
      ] as Field[],
    ],
  ])('histogram with %s bucket counts and bounds, sum/min/max present', (_name, buckets) => {
    const m = decodeOne([
      [1, 'bytes', 'latency'],
      [
        9,
        'message',
        [
          [
            1,
            'message',
            point([[4, 'fixed64', 6n], [5, 'double', 3.5], ...buckets, [11, 'double', 0.05], [12, 'double', 2]]),
          ],
          [2, 'varint', 1],
        ],
      ],
    ]);
    expect(m.data).toMatchObject({
      type: 'histogram',
      aggregationTemporality: 1,
      dataPoints: [{ count: 6, sum: 3.5, bucketCounts: [1, 2, 3], explicitBounds: [0.1, 1], min: 0.05, max: 2 }],
    });
  });

  test('histogram without sum, min and max leaves them undefined', () => {
    const m = decodeOne([
      [1, 'bytes', 'h'],
      [9, 'message', [[1, 'message', point([[4, 'fixed64', 0n]])]]],
    ]);
    expect(m.data.dataPoints[0]).toMatchObject({
      count: 0,
      sum: undefined,
      min: undefined,
      max: undefined,
      bucketCounts: [],
    });
  });

  test('exponential histogram with zigzag scale and offsets, packed varint counts', () => {
    const zigzag = (n: number) => (n << 1) ^ (n >> 31);
    const m = decodeOne([
      [1, 'bytes', 'exp'],
      [
        10,
        'message',
        [
          [
            1,
            'message',
            [
              [2, 'fixed64', T0],
              [3, 'fixed64', T1],
              [4, 'fixed64', 7n],
              [5, 'double', 10],
              [6, 'varint', zigzag(-2)],
              [7, 'fixed64', 1n],
              [
                8,
                'message',
                [
                  [1, 'varint', zigzag(-3)],
                  [2, 'bytes', Buffer.from([1, 2, 0x80, 0x01])],
                ],
              ],
              [
                9,
                'message',
                [
                  [1, 'varint', zigzag(4)],
                  [2, 'varint', 5],
                ],
              ],
              [14, 'double', 0.001],
            ],
          ],
          [2, 'varint', 2],
        ],
      ],
    ]);
    expect(m.data).toMatchObject({
      type: 'exponentialHistogram',
      aggregationTemporality: 2,
      dataPoints: [
        {
          count: 7,
          sum: 10,
          scale: -2,
          zeroCount: 1,
          positive: { offset: -3, bucketCounts: [1, 2, 128] },
          negative: { offset: 4, bucketCounts: [5] },
          zeroThreshold: 0.001,
        },
      ],
    });
  });

  test('summary with quantiles', () => {
    const m = decodeOne([
      [1, 'bytes', 'rpc'],
      [
        11,
        'message',
        [
          [
            1,
            'message',
            point([
              [4, 'fixed64', 10n],
              [5, 'double', 12.5],
              [
                6,
                'message',
                [
                  [1, 'double', 0.5],
                  [2, 'double', 1],
                ],
              ],
              [
                6,
                'message',
                [
                  [1, 'double', 0.99],
                  [2, 'double', 4],
                ],
              ],
            ]),
          ],
        ],
      ],
    ]);
    expect(m.data).toMatchObject({
      type: 'summary',
      dataPoints: [
        {
          count: 10,
          sum: 12.5,
          quantileValues: [
            { quantile: 0.5, value: 1 },
            { quantile: 0.99, value: 4 },
          ],
        },
      ],
    });
  });

  test('a metric with no data is kept with type none', () => {
    expect(decodeOne([[1, 'bytes', 'empty']]).data).toEqual({ type: 'none', dataPoints: [] });
  });

  test('a packed fixed64 field whose length is not a multiple of 8 is malformed, with its path', () => {
    expect(() =>
      decodeMetricsRequest(
        request([
          [1, 'bytes', 'h'],
          [9, 'message', [[1, 'message', [[6, 'bytes', Buffer.alloc(7)]]]]],
        ]),
        LIMITS,
      ),
    ).toThrow(/resourceMetrics\[0\]\.scopeMetrics\[0\]\.metrics\[0\]\.histogram\.dataPoints\[0\]: packed field/);
  });
});

describe('the metric types of OTLP before 0.9, as OpenTelemetry JS 0.27 sends them', () => {
  const labels = (key: string, value: string): Field => [
    1,
    'message',
    [
      [1, 'bytes', key],
      [2, 'bytes', value],
    ],
  ];

  test('double_sum (7) and double_histogram (9) points with labels (field 1, StringKeyValue)', () => {
    const sum = decodeOne([
      [1, 'bytes', 'requests'],
      [
        7,
        'message',
        [
          [1, 'message', point([labels('route', '/a'), [4, 'double', 5]])],
          [2, 'varint', 2],
          [3, 'varint', 1],
        ],
      ],
    ]);
    expect(sum.data).toMatchObject({
      type: 'sum',
      dataPoints: [{ attributes: [{ key: 'route', value: '/a' }], value: 5, isInt: false }],
    });
    const histogram = decodeOne([
      [1, 'bytes', 'latency'],
      [
        9,
        'message',
        [
          [
            1,
            'message',
            point([
              labels('route', '/a'),
              [4, 'fixed64', 2n],
              [5, 'double', 40],
              [6, 'bytes', packedFixed64([1, 1])],
              [7, 'bytes', packedDoubles([20])],
            ]),
          ],
          [2, 'varint', 2],
        ],
      ],
    ]);
    expect(histogram.data).toMatchObject({
      type: 'histogram',
      dataPoints: [
        { attributes: [{ key: 'route', value: '/a' }], count: 2, sum: 40, bucketCounts: [1, 1], explicitBounds: [20] },
      ],
    });
  });

  test('int_gauge (4), int_sum (6) and int_histogram (8): sfixed64 values and sums', () => {
    const gauge = decodeOne([
      [1, 'bytes', 'g'],
      [4, 'message', [[1, 'message', point([labels('k', 'v'), [4, 'fixed64', BigInt.asUintN(64, -7n)]])]]],
    ]);
    expect(gauge.data).toMatchObject({
      type: 'gauge',
      dataPoints: [{ attributes: [{ key: 'k', value: 'v' }], value: -7, isInt: true }],
    });
    const sum = decodeOne([
      [1, 'bytes', 's'],
      [
        6,
        'message',
        [
          [1, 'message', point([[4, 'fixed64', 9n]])],
          [2, 'varint', 1],
          [3, 'varint', 1],
        ],
      ],
    ]);
    expect(sum.data).toMatchObject({
      type: 'sum',
      aggregationTemporality: 1,
      isMonotonic: true,
      dataPoints: [{ value: 9, isInt: true }],
    });
    const histogram = decodeOne([
      [1, 'bytes', 'h'],
      [
        8,
        'message',
        [
          [
            1,
            'message',
            point([
              [4, 'fixed64', 3n],
              [5, 'fixed64', 30n],
              [6, 'bytes', packedFixed64([3])],
            ]),
          ],
          [2, 'varint', 2],
        ],
      ],
    ]);
    expect(histogram.data).toMatchObject({
      type: 'histogram',
      dataPoints: [{ count: 3, sum: 30, bucketCounts: [3], explicitBounds: [] }],
    });
  });
});
