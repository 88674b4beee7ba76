// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Grafana variable syntax is what is under test
import {
  alertOperands,
  builtIns,
  escapeForRegex,
  interpolate,
  parseLabelValues,
  roundInterval,
  type VariableValue,
} from '../src';

const v = (values: string[], extra: Partial<VariableValue> = {}): VariableValue => ({
  values,
  all: false,
  multi: true,
  includeAll: true,
  ...extra,
});

describe('interpolate, as Grafana does for Prometheus', () => {
  const builtins = builtIns({ rangeMs: 3_600_000, scrapeIntervalMs: 15_000 });

  test('All with a custom all value gives the all value, unescaped', () => {
    expect(interpolate('x{a=~"$a"}', { a: v(['p', 'q'], { all: true, allValue: '.*' }) }, builtins)).toBe('x{a=~".*"}');
  });
  test('All without a custom all value gives every value, regex-escaped, as a group', () => {
    expect(interpolate('x{a=~"$a"}', { a: v(['a.b', 'c'], { all: true }) }, builtins)).toBe('x{a=~"(a\\.b|c)"}');
  });
  test('one value of a multi-value variable is escaped; ${a}, [[a]] and ${a:regex} are the same variable', () => {
    const vars = { a: v(['sonde-demo/cart']) };
    expect(interpolate('$a ${a} [[a]] ${a:regex}', vars, builtins)).toBe(
      'sonde-demo/cart sonde-demo/cart sonde-demo/cart sonde-demo/cart',
    );
    expect(interpolate('${a}', { a: v(['1.2']) }, builtins)).toBe('1\\.2');
  });
  test('a single-value variable is written as it is; :raw and :pipe formats', () => {
    const vars = { a: v(['1.2'], { multi: false, includeAll: false }), b: v(['x.y', 'z']) };
    expect(interpolate('$a ${b:raw} ${b:pipe}', vars, builtins)).toBe('1.2 x.y,z x.y|z');
  });
  test('built-ins: $__rate_interval is max(interval + scrape, 4 × scrape); $__range in seconds', () => {
    // 1 h over 1000 points: 3.6 s, rounded to 5 s, raised to the 15 s scrape interval.
    expect(builtins.__interval).toBe('15s');
    expect(builtins.__rate_interval).toBe('60s');
    expect(builtins.__range).toBe('3600s');
    expect(interpolate('rate(x[$__rate_interval]) [$__range]', {}, builtins)).toBe('rate(x[60s]) [3600s]');
    const day = builtIns({ rangeMs: 86_400_000, scrapeIntervalMs: 15_000 });
    expect(day.__interval).toBe('60s');
    expect(day.__rate_interval).toBe('75s');
  });
  test('an unknown variable is an error, not a silent pass', () => {
    expect(() => interpolate('x{a=~"$nope"}', {}, builtins)).toThrow(/unknown variable \$nope/);
  });
  test('roundInterval follows Grafana steps', () => {
    expect(roundInterval(3600)).toBe(5000);
    expect(roundInterval(3400)).toBe(2000);
    expect(roundInterval(86_400)).toBe(60_000);
    expect(roundInterval(10)).toBe(10);
  });
  test('escapeForRegex escapes every regex metacharacter', () => {
    expect(escapeForRegex('a.b*c(d)|e[f]{g}^$+?\\')).toBe('a\\.b\\*c\\(d\\)\\|e\\[f\\]\\{g\\}\\^\\$\\+\\?\\\\');
  });
});

describe('parseLabelValues', () => {
  test('selector and label, with commas and braces inside the selector', () => {
    expect(parseLabelValues('label_values(x{a=~"b,c", d="}"}, service)')).toEqual({
      match: 'x{a=~"b,c", d="}"}',
      label: 'service',
    });
  });
  test('label only', () => {
    expect(parseLabelValues('label_values(job)')).toEqual({ label: 'job' });
  });
  test('anything else is not label_values', () => {
    expect(parseLabelValues('query_result(up)')).toBeUndefined();
  });
});

describe('alertOperands', () => {
  test('splits at comparisons and set operators and drops the thresholds', () => {
    expect(alertOperands('a:ratio_rate1h > (14.4 * 0.005)\nand a:ratio_rate5m > (14.4 * 0.005)')).toEqual([
      'a:ratio_rate1h',
      'a:ratio_rate5m',
    ]);
    expect(alertOperands('up{job="sonde"} == 0')).toEqual(['up{job="sonde"}']);
    expect(alertOperands('max by (i) (a / b) > 0.8')).toEqual(['max by (i) (a / b)']);
    expect(alertOperands('sum(rate(x[5m])) > 0 or sum(rate(y[5m])) > 0')).toEqual([
      'sum(rate(x[5m]))',
      'sum(rate(y[5m]))',
    ]);
  });
  test('leaves comparisons inside parentheses, strings and matchers alone', () => {
    expect(alertOperands('sum(x > 1) >= 2')).toEqual(['sum(x > 1)']);
    expect(alertOperands('x{a!="b>c", d=~"or"} != bool 1')).toEqual(['x{a!="b>c", d=~"or"}']);
    expect(alertOperands('orders_total > 5')).toEqual(['orders_total']);
  });
});
