/** The LogQL subset's parser: each construct it takes, and the 400 text of each it refuses. */
import { ParseError, parseQuery, parseSelector } from '../src/log-store/logql/parser';

const q = (text: string) => parseQuery(text);
const err = (text: string) => {
  try {
    parseQuery(text);
  } catch (e) {
    if (e instanceof ParseError) return e.message;
    throw e;
  }
  throw new Error(`parsed: ${text}`);
};

describe('stream selectors', () => {
  test('the four matchers, raw and escaped strings', () => {
    expect(q('{a="x", b!="y", c=~"re.*", d!~`r\\d`}')).toEqual({
      kind: 'log',
      matchers: [
        { name: 'a', op: '=', value: 'x' },
        { name: 'b', op: '!=', value: 'y' },
        { name: 'c', op: '=~', value: 're.*' },
        { name: 'd', op: '!~', value: 'r\\d' },
      ],
      stages: [],
    });
    expect(q('{a="q\\"uote\\n"}')).toMatchObject({ matchers: [{ value: 'q"uote\n' }] });
  });

  test('{} alone and empty-compatible matchers are refused as Loki refuses them', () => {
    const text =
      'parse error : queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~".*" does not meet this requirement, but app=~".+" will';
    expect(err('{}')).toBe(text);
    expect(err('{a=~".*"}')).toBe(text);
    expect(err('{a!="x"}')).toBe(text);
    expect(err('{a=""}')).toBe(text);
    expect(err('sum(count_over_time({a=~".*"}[1m]))')).toBe(text);
    expect(() => q('{a=~".+"}')).not.toThrow();
    expect(parseSelector('{}', true)).toEqual([]);
  });

  test('a regex RE2 does not take is a parse error naming it', () => {
    expect(err('{a=~"(?=x)"}')).toMatch(/^parse error at line 1, col 5: error parsing regexp: .*RE2/);
    expect(err('{a="x"} |~ "a(b"')).toMatch(/^parse error at line 1, col 12: error parsing regexp/);
  });

  test('syntax errors name the line, the column and the token', () => {
    expect(err('{a="x"')).toBe('parse error at line 1, col 7: syntax error: unexpected end of input, expecting ","');
    expect(err('{a="x"} |')).toBe('parse error at line 1, col 10: syntax error: unexpected end of input');
    expect(err('{a=x}')).toBe('parse error at line 1, col 4: syntax error: unexpected IDENT x, expecting STRING');
    expect(err('{a="x"}\n  |= 5')).toBe(
      'parse error at line 2, col 6: syntax error: unexpected NUMBER 5, expecting STRING',
    );
    expect(err('{a="\\q"}')).toMatch(/^parse error at line 1, col 4: syntax error: invalid escape/);
    expect(err('')).toBe('parse error : syntax error: the query is empty');
    expect(err('count_over_time({a="x"}[$__auto])')).toMatch(/substitute the variable "\$__auto" first/);
  });
});

describe('pipeline stages', () => {
  test('line filters, chained, with or', () => {
    expect(q('{a="x"} |= "a" != "b" |~ "c+" !~ "d" |= "e" or "f"')).toMatchObject({
      stages: [
        { kind: 'line', filter: { op: '|=', values: ['a'] } },
        { kind: 'line', filter: { op: '!=', values: ['b'] } },
        { kind: 'line', filter: { op: '|~', values: ['c+'] } },
        { kind: 'line', filter: { op: '!~', values: ['d'] } },
        { kind: 'line', filter: { op: '|=', values: ['e', 'f'] } },
      ],
    });
  });

  test('label filters: strings, numbers, durations, bytes; and binds tighter than or; parentheses', () => {
    const e = q('{a="x"} | level="error" or status >= 500, latency > 250ms and size < 20MB | (x=~"a|b" or y!~"c") z=2');
    expect(e).toMatchObject({
      stages: [
        {
          kind: 'label',
          expr: {
            kind: 'or',
            left: { kind: 'string', name: 'level', op: '=', value: 'error' },
            right: {
              kind: 'and',
              left: {
                kind: 'and',
                left: { kind: 'number', name: 'status', op: '>=', value: 500, unit: 'number' },
                right: { kind: 'number', name: 'latency', op: '>', value: 0.25, unit: 'duration' },
              },
              right: { kind: 'number', name: 'size', op: '<', value: 20e6, unit: 'bytes' },
            },
          },
        },
        {
          kind: 'label',
          expr: {
            kind: 'and',
            left: { kind: 'or', left: { name: 'x', op: '=~' }, right: { name: 'y', op: '!~' } },
            right: { kind: 'number', name: 'z', op: '==', value: 2 },
          },
        },
      ],
    });
  });

  test('parsers: json (with fields), logfmt (flags, fields), regexp', () => {
    expect(
      q(
        '{a="x"} | json | json first="servers[0]", ua="request.headers[\\"User-Agent\\"]" | logfmt --strict --keep-empty | logfmt dur="duration", level | regexp "(?P<ip>\\\\S+) -"',
      ),
    ).toMatchObject({
      stages: [
        { kind: 'json', fields: undefined },
        {
          kind: 'json',
          fields: [
            { name: 'first', path: ['servers', 0] },
            { name: 'ua', path: ['request', 'headers', 'User-Agent'] },
          ],
        },
        { kind: 'logfmt', strict: true, keepEmpty: true },
        {
          kind: 'logfmt',
          strict: false,
          fields: [
            { name: 'dur', key: 'duration' },
            { name: 'level', key: 'level' },
          ],
        },
        { kind: 'regexp', pattern: '(?P<ip>\\S+) -' },
      ],
    });
    expect(err('{a="x"} | regexp "(\\\\S+)"')).toMatch(/needs at least one named capture group/);
  });

  test('drop, keep, line_format, label_format', () => {
    const e = q(
      '{a="x"} | drop __error__, level="debug" | keep a, b=~"x.*" | line_format "{{.a}} {{ __line__ }}" | label_format dst=src, t="{{ upper .a }}"',
    );
    expect(e).toMatchObject({
      stages: [
        { kind: 'drop', items: [{ name: '__error__' }, { name: 'level', matcher: { op: '=', value: 'debug' } }] },
        { kind: 'keep', items: [{ name: 'a' }, { name: 'b', matcher: { op: '=~' } }] },
        { kind: 'line_format' },
        { kind: 'label_format', ops: [{ dst: 'dst', src: 'src' }, { dst: 't' }] },
      ],
    });
  });

  test('templates Grafana generates (trace to logs) parse; unsupported template parts are named', () => {
    expect(() =>
      q(
        '{service_name="cart"} | label_format log_line_contains_trace_id=`{{ contains "4bf9" __line__  }}` | log_line_contains_trace_id="true" or trace_id="4bf9"',
      ),
    ).not.toThrow();
    expect(err('{a="x"} | line_format "{{ if .a }}x{{ end }}"')).toMatch(
      /^parse error at line 1, col 23: syntax error: invalid line template: "\{\{if\}\}" is not supported/,
    );
    expect(err('{a="x"} | line_format "{{ nosuch .a }}"')).toMatch(/function "nosuch" not defined/);
  });

  test('unsupported stages are 400s naming the construct', () => {
    expect(err('{a="x"} | pattern "<ip> <_>"')).toBe(
      'parse error at line 1, col 11: syntax error: the pattern parser is not supported by this receiver\'s LogQL (see the receiver README, "Loki query API")',
    );
    expect(err('{a="x"} | unwrap latency')).toMatch(/col 11: syntax error: unwrap is not supported/);
    expect(err('{a="x"} |> "<_> foo"')).toMatch(/col 9: syntax error: the pattern line filter "\|>" is not supported/);
    expect(err('{a="x"} | addr = ip("10.0.0.0/8")')).toMatch(/the ip\(\) label filter is not supported/);
    expect(err('{a="x"} | decolorize')).toMatch(/decolorize is not supported/);
  });
});

describe('metric queries', () => {
  test('range aggregations: both range positions, offset', () => {
    expect(q('count_over_time({a="x"} |= "e" [5m])')).toMatchObject({
      kind: 'range',
      fn: 'count_over_time',
      rangeNs: 300_000_000_000n,
      offsetNs: 0n,
      log: { stages: [{ kind: 'line' }] },
    });
    expect(q('rate({a="x"}[1m] |= "e" offset 1h)')).toMatchObject({
      kind: 'range',
      fn: 'rate',
      offsetNs: 3_600_000_000_000n,
      log: { stages: [{ kind: 'line' }] },
    });
    for (const fn of ['bytes_over_time', 'bytes_rate', 'absent_over_time']) {
      expect(q(`${fn}({a="x"}[1m30s])`)).toMatchObject({ fn, rangeNs: 90_000_000_000n });
    }
  });

  test("Grafana's log volume query", () => {
    expect(
      q('sum by (level, detected_level) (count_over_time({service_name="cart"} | drop __error__[1m]))'),
    ).toMatchObject({
      kind: 'vector_agg',
      op: 'sum',
      grouping: { without: false, labels: ['level', 'detected_level'] },
      inner: { kind: 'range', fn: 'count_over_time', log: { stages: [{ kind: 'drop' }] } },
    });
  });

  test('vector aggregations: grouping before or after, topk/bottomk, without', () => {
    expect(q('sum(rate({a="x"}[1m])) by (b)')).toMatchObject({
      op: 'sum',
      grouping: { without: false, labels: ['b'] },
    });
    expect(q('topk(3, sum by (b) (rate({a="x"}[1m])))')).toMatchObject({ op: 'topk', param: 3, inner: { op: 'sum' } });
    expect(q('bottomk by (c) (2, count_over_time({a="x"}[1m]))')).toMatchObject({
      op: 'bottomk',
      param: 2,
      grouping: { labels: ['c'] },
    });
    for (const op of ['avg', 'min', 'max', 'count', 'stddev', 'stdvar']) {
      expect(q(`${op} without (b) (rate({a="x"}[1m]))`)).toMatchObject({
        op,
        grouping: { without: true, labels: ['b'] },
      });
    }
  });

  test('binary operations: precedence, bool, vector(), the health check', () => {
    expect(q('vector(1)+vector(1)')).toEqual({
      kind: 'binary',
      op: '+',
      bool: false,
      left: { kind: 'vector', value: 1 },
      right: { kind: 'vector', value: 1 },
    });
    expect(q('1 + 2 * 3 ^ 2 ^ 2')).toMatchObject({
      op: '+',
      right: { op: '*', right: { op: '^', left: { value: 3 }, right: { op: '^' } } },
    });
    expect(q('sum(rate({a="x"}[1m])) > bool 2')).toMatchObject({ op: '>', bool: true });
    expect(q('-rate({a="x"}[1m])')).toMatchObject({ op: '*', left: { value: -1 } });
  });

  test('unsupported metric constructs are 400s naming them', () => {
    expect(err('sum_over_time({a="x"} | unwrap d [1m])')).toMatch(
      /col 1: syntax error: "sum_over_time" \(range aggregations of unwrapped values\) is not supported/,
    );
    expect(err('rate({a="x"}[1m]) and rate({b="y"}[1m])')).toMatch(/the set operator "and" is not supported/);
    expect(err('rate({a="x"}[1m]) / on (b) rate({b="y"}[1m])')).toMatch(/vector matching "on" is not supported/);
    expect(err('label_replace(rate({a="x"}[1m]), "d", "$1", "s", "(.*)")')).toMatch(/"label_replace" is not supported/);
    expect(err('{a="x"} + 1')).toMatch(/binary operators apply to metric queries/);
    expect(err('count_over_time({a="x"})')).toMatch(/unexpected "\)", expecting "\["/);
    expect(err('topk(0, rate({a="x"}[1m]))')).toMatch(/invalid parameter for topk/);
  });

  test('bounds: query length and nesting', () => {
    expect(() => parseQuery(`{a="${'x'.repeat(100)}"}`, { maxLength: 50 })).toThrow(
      'parse error : the query is 106 characters long, over the limit of 50',
    );
    const deep = `${'('.repeat(200)}vector(1)${')'.repeat(200)}`;
    expect(() => parseQuery(deep)).toThrow(/nests deeper than 64 levels/);
  });
});

describe('nothing but a ParseError, whatever the text', () => {
  // Token soup from LogQL's vocabulary, and truncations of valid queries: a query is network input,
  // and anything the parser throws besides ParseError would be a 500.
  const VOCAB = [
    '{',
    '}',
    '(',
    ')',
    '[',
    ']',
    ',',
    '|',
    '|=',
    '!=',
    '|~',
    '!~',
    '=',
    '=~',
    '==',
    '>',
    '>=',
    '<',
    '<=',
    '+',
    '-',
    '*',
    '/',
    '%',
    '^',
    'a',
    'b',
    '"x"',
    '"(?P<n>.)"',
    '`{{.a}}`',
    '"{{"',
    '"\\\\"',
    '1',
    '0',
    '1m',
    '5s',
    '20MB',
    '1e3',
    'json',
    'logfmt',
    'drop',
    'keep',
    'line_format',
    'label_format',
    'regexp',
    'or',
    'and',
    'by',
    'without',
    'offset',
    'bool',
    'sum',
    'count_over_time',
    'rate',
    'topk',
    'vector',
    'unwrap',
    'pattern',
    '__error__',
    '#',
    '\n',
    '"\\x"',
    '.5',
    '0x1',
  ];
  const VALID = [
    'sum by (level, detected_level) (count_over_time({service_name="cart"} | drop __error__[1m]))',
    '{service_name="cart"} | label_format x=`{{ contains "ab" __line__ }}` | x="true" or trace_id="ab"',
    'topk(2, sum by (a) (rate({a=~"x.+"} |= "e" | json | logfmt --strict | n > 5 and d < 2s [5m] offset 1h)))',
  ];
  let seed = 42;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };

  test('random token sequences and truncated queries', () => {
    const inputs: string[] = [];
    for (let i = 0; i < 3000; i++) {
      const n = 1 + rand(14);
      inputs.push(Array.from({ length: n }, () => VOCAB[rand(VOCAB.length)]).join(rand(2) ? ' ' : ''));
    }
    for (const v of VALID) for (let i = 0; i <= v.length; i++) inputs.push(v.slice(0, i), v.slice(i));
    let parsed = 0;
    for (const text of inputs) {
      try {
        parseQuery(text);
        parsed++;
      } catch (e) {
        if (!(e instanceof ParseError)) throw new Error(`${JSON.stringify(text)} threw ${(e as Error).stack}`);
        expect(e.message).toMatch(/^parse error (at line \d+, col \d+: |: )/);
      }
    }
    expect(parsed).toBeGreaterThan(3);
  });
});
