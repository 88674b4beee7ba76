/**
 * OpenTelemetry → Prometheus naming, as pure functions: metric names with unit and type suffixes, label
 * names, label values from AnyValues, `job`/`instance`, and text-format escaping.
 *
 * This is the default `UnderscoreEscapingWithSuffixes` strategy of the Collector's Prometheus exporters,
 * following the specification's `compatibility/prometheus_and_openmetrics.md` ("OTLP Metric points to
 * Prometheus") and prometheus/otlptranslator (`metric_namer.go`, `unit_namer.go`, `label_namer.go`,
 * `strconv.go`), whose behaviour is reproduced exactly except where noted below.
 *
 * Metric names (otlptranslator `normalizeName`):
 * - the name is split into tokens on every character outside `[a-zA-Z0-9:]` (`_` included), so invalid
 *   characters become `_`, runs collapse, and leading/trailing underscores disappear; colons stay;
 * - the unit is split at its first `/`; each part is trimmed (Go `strings.TrimSpace`), dropped if it holds
 *   `{` or `}`, mapped through the unit / per-unit tables (unknown units kept), the per part prefixed `per_`,
 *   then cleaned (invalid characters → `_`, runs collapsed, one leading `_` dropped);
 * - each unit part is appended unless the name already holds it as a whole token (so `per_second`, which is
 *   two tokens in a name, is appended again — otlptranslator does the same);
 * - counters: every `total` token is removed and one `total` appended; gauges with unit exactly `1`: the same
 *   with `ratio`; a leading digit gets a `_` prefix; an empty result means "cannot be named" ('').
 * - Deviation: when a main unit ends in `_` (e.g. `m³` → `m_`) the next token is joined without another `_`,
 *   so `m³` on a counter gives `…_m_total`, not otlptranslator's `…_m__total` (the spec requires runs of `_`
 *   to collapse). Gauges are unaffected (`…_m_`, as otlptranslator).
 *
 * Label names (otlptranslator `LabelNamer{}` defaults, as the Collector's prometheusexporter configures it
 * with the `PermissiveLabelSanitization` gate on): characters outside `[a-zA-Z0-9]` become `_` with runs
 * collapsed (original underscores included); a `__x__` key keeps its `__` affixes and only its middle is
 * sanitized; a leading digit gets `key_`; a single leading `_` is kept; an empty or all-underscore result is
 * unrepresentable ('').
 *
 * Label values follow the specification's "AnyValue representation for non-OTLP protocols"
 * (`common/README.md`); see {@link labelValue}.
 */

import { type AnyValue, type KeyValue, KeyValueList } from '../model/common';

export type PromType = 'counter' | 'gauge' | 'histogram' | 'summary';

// otlptranslator metric_namer.go `unitMap` (the default, non-"updated" table: TiBy → tibibytes).
const UNIT_MAP: ReadonlyMap<string, string> = new Map([
  ['d', 'days'],
  ['h', 'hours'],
  ['min', 'minutes'],
  ['s', 'seconds'],
  ['ms', 'milliseconds'],
  ['us', 'microseconds'],
  ['ns', 'nanoseconds'],
  ['By', 'bytes'],
  ['KiBy', 'kibibytes'],
  ['MiBy', 'mebibytes'],
  ['GiBy', 'gibibytes'],
  ['TiBy', 'tibibytes'],
  ['KBy', 'kilobytes'],
  ['MBy', 'megabytes'],
  ['GBy', 'gigabytes'],
  ['TBy', 'terabytes'],
  ['m', 'meters'],
  ['V', 'volts'],
  ['A', 'amperes'],
  ['J', 'joules'],
  ['W', 'watts'],
  ['g', 'grams'],
  ['Cel', 'celsius'],
  ['Hz', 'hertz'],
  ['1', ''],
  ['%', 'percent'],
]);

// otlptranslator metric_namer.go `perUnitMap`.
const PER_UNIT_MAP: ReadonlyMap<string, string> = new Map([
  ['s', 'second'],
  ['m', 'minute'],
  ['h', 'hour'],
  ['d', 'day'],
  ['w', 'week'],
  ['mo', 'month'],
  ['y', 'year'],
]);

const UNDERSCORE = 0x5f;

function isAlnum(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39);
}

function isMetricChar(c: number): boolean {
  return isAlnum(c) || c === 0x3a; // ':'
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** Go's `unicode.IsSpace` (the White_Space property), which `strings.TrimSpace` uses; not JS's `trim`. */
function isGoSpace(c: number): boolean {
  return (
    (c >= 0x09 && c <= 0x0d) ||
    c === 0x20 ||
    c === 0x85 ||
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000
  );
}

function goTrimSpace(s: string, start: number, end: number): string {
  while (start < end && isGoSpace(s.charCodeAt(start))) start++;
  while (end > start && isGoSpace(s.charCodeAt(end - 1))) end--;
  return s.slice(start, end);
}

function hasBrace(s: string): boolean {
  return s.indexOf('{') >= 0 || s.indexOf('}') >= 0;
}

/** otlptranslator `cleanUpUnit`: characters outside `[a-zA-Z0-9:]` → `_`, runs collapsed, one leading `_` dropped. */
function cleanUpUnit(unit: string): string {
  let out = '';
  let runStart = -1;
  let prevUnderscore = false;
  for (let i = 0; i < unit.length; i++) {
    if (isMetricChar(unit.charCodeAt(i))) {
      if (runStart < 0) runStart = i;
      prevUnderscore = false;
    } else {
      if (runStart >= 0) {
        out += unit.slice(runStart, i);
        runStart = -1;
      }
      if (!prevUnderscore) {
        out += '_';
        prevUnderscore = true;
      }
    }
  }
  if (runStart === 0) return unit; // already clean
  if (runStart > 0) out += unit.slice(runStart);
  return out.charCodeAt(0) === UNDERSCORE ? out.slice(1) : out;
}

/** The cleaned main-unit suffix of an OTLP unit ('' for none). */
function mainUnitSuffix(unit: string, slash: number): string {
  const main = goTrimSpace(unit, 0, slash < 0 ? unit.length : slash);
  if (main === '' || hasBrace(main)) return '';
  return cleanUpUnit(UNIT_MAP.get(main) ?? main);
}

/** The cleaned `per_…` suffix of an OTLP unit ('' for none). */
function perUnitSuffix(unit: string, slash: number): string {
  if (slash < 0 || slash === unit.length - 1) return '';
  const per = goTrimSpace(unit, slash + 1, unit.length);
  if (per === '' || hasBrace(per)) return '';
  return cleanUpUnit(`per_${PER_UNIT_MAP.get(per) ?? per}`);
}

/** Removes every `token` from `tokens` and appends one at the end. */
function moveToEnd(tokens: string[], token: string): void {
  let w = 0;
  for (let r = 0; r < tokens.length; r++) if (tokens[r] !== token) tokens[w++] = tokens[r];
  tokens.length = w;
  tokens.push(token);
}

/**
 * The Prometheus metric name, as written in the text format, of an OTLP metric converted to `type`
 * (`counter` = monotonic sum; a non-monotonic sum is a `gauge`). '' when nothing nameable remains
 * (e.g. a name of only invalid characters on a gauge): such a metric must be dropped.
 */
export function metricName(name: string, unit: string, type: PromType): string {
  const tokens: string[] = [];
  let start = -1;
  for (let i = 0; i < name.length; i++) {
    if (isMetricChar(name.charCodeAt(i))) {
      if (start < 0) start = i;
    } else if (start >= 0) {
      tokens.push(name.slice(start, i));
      start = -1;
    }
  }
  if (start >= 0) tokens.push(start === 0 ? name : name.slice(start));

  // otlptranslator addUnitTokens
  const slash = unit.indexOf('/');
  let main = mainUnitSuffix(unit, slash);
  let per = perUnitSuffix(unit, slash);
  if (tokens.includes(main)) main = '';
  if (per === 'per_') per = '';
  else {
    if (per.charCodeAt(per.length - 1) === UNDERSCORE) per = per.slice(0, -1);
    if (tokens.includes(per)) per = '';
  }
  if (per !== '' && main.charCodeAt(main.length - 1) === UNDERSCORE) main = main.slice(0, -1);
  if (main !== '') tokens.push(main);
  if (per !== '') tokens.push(per);

  if (type === 'counter') moveToEnd(tokens, 'total');
  else if (type === 'gauge' && unit === '1') moveToEnd(tokens, 'ratio');

  if (tokens.length === 0) return '';
  let out = tokens[0];
  for (let i = 1; i < tokens.length; i++) {
    out += out.charCodeAt(out.length - 1) === UNDERSCORE ? tokens[i] : `_${tokens[i]}`;
  }
  return isDigit(out.charCodeAt(0)) ? `_${out}` : out;
}

/**
 * The OpenMetrics family name of a counter whose text-format name is `textName`: the name without its
 * `_total` suffix (OpenMetrics writes the family `foo` and the sample `foo_total`).
 */
export function counterFamilyName(textName: string): string {
  return textName.length > 6 && textName.endsWith('_total') ? textName.slice(0, -6) : textName;
}

/** True when {@link labelName} would return `key` unchanged (otlptranslator `canFastPathLabel`). */
function isCleanLabelName(key: string): boolean {
  const n = key.length;
  if (n === 0 || isDigit(key.charCodeAt(0))) return false;
  let start = 0;
  let end = n;
  if (n >= 4 && key.startsWith('__') && key.endsWith('__')) {
    start = 2;
    end = n - 2;
  }
  let prevUnderscore = false;
  let sawOther = false;
  for (let i = start; i < end; i++) {
    const c = key.charCodeAt(i);
    if (c === UNDERSCORE) {
      if (prevUnderscore) return false;
      prevUnderscore = true;
    } else if (isAlnum(c)) {
      prevUnderscore = false;
      sawOther = true;
    } else return false;
  }
  return sawOther;
}

/**
 * The Prometheus label name of an attribute key. '' when the key cannot be represented (empty, or only
 * invalid characters and underscores): such an attribute must be left out.
 */
export function labelName(key: string): string {
  if (isCleanLabelName(key)) return key;
  if (key === '') return '';
  let start = 0;
  let end = key.length;
  const reserved = end >= 4 && key.startsWith('__') && key.endsWith('__');
  if (reserved) {
    start = 2;
    end -= 2;
  }
  let out = reserved ? '__' : '';
  let runStart = -1;
  let prevUnderscore = false;
  let sawOther = false;
  for (let i = start; i < end; i++) {
    if (isAlnum(key.charCodeAt(i))) {
      if (runStart < 0) runStart = i;
      prevUnderscore = false;
      sawOther = true;
    } else {
      if (runStart >= 0) {
        out += key.slice(runStart, i);
        runStart = -1;
      }
      if (!prevUnderscore) {
        out += '_';
        prevUnderscore = true;
      }
    }
  }
  if (!sawOther) return '';
  if (runStart >= 0) out += key.slice(runStart, end);
  if (reserved) out += '__';
  return isDigit(out.charCodeAt(0)) ? `key_${out}` : out;
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** A double as a JSON number (ECMAScript Number::toString, which is also what pdata's `AsString` mimics). */
function doubleString(v: number): string {
  if (v === Number.POSITIVE_INFINITY) return 'Infinity';
  if (v === Number.NEGATIVE_INFINITY) return '-Infinity';
  return String(v); // NaN → 'NaN'
}

/** Code-point (= UTF-8 byte) order, as Go compares strings; JS `<` compares UTF-16 code units. */
function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      // Surrogates (astral code points) sort after U+E000–U+FFFF in code-point order.
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

/** An AnyValue as a JSON value inside an array or map (the spec's array-element rules). */
function jsonValue(v: AnyValue): string {
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'boolean':
      return v ? 'true' : 'false';
    case 'bigint':
      return v.toString();
    case 'number':
      return Number.isFinite(v) ? String(v) : `"${doubleString(v)}"`;
    case 'undefined':
      return 'null';
  }
  if (v instanceof Uint8Array) return `"${base64(v)}"`;
  if (Array.isArray(v)) return jsonArray(v);
  return jsonObject(v as KeyValueList);
}

function jsonArray(values: readonly AnyValue[]): string {
  let out = '[';
  for (let i = 0; i < values.length; i++) out += (i === 0 ? '' : ',') + jsonValue(values[i]);
  return `${out}]`;
}

/**
 * Members sorted by key (code-point order) so that equal maps, which the spec defines as order-insensitive,
 * give one label value; with duplicate keys the last wins. Both match pdata's `AsString` (Go's
 * `json.Marshal` of `AsRaw()`).
 */
function jsonObject(list: KeyValueList): string {
  const kvs = list.values;
  if (kvs.length === 0) return '{}';
  const order = kvs.map((_, i) => i).sort((i, j) => compareCodePoints(kvs[i].key, kvs[j].key) || i - j);
  let out = '{';
  for (let n = 0; n < order.length; n++) {
    const kv = kvs[order[n]];
    if (n + 1 < order.length && kvs[order[n + 1]].key === kv.key) continue;
    out += `${out.length === 1 ? '' : ','}${JSON.stringify(kv.key)}:${jsonValue(kv.value)}`;
  }
  return `${out}}`;
}

/**
 * The string form of an attribute value for a label, per the spec's "AnyValue representation for non-OTLP
 * protocols": strings as they are; booleans `true`/`false`; int64 in decimal; doubles as JSON numbers
 * (ECMAScript formatting) with `NaN`, `Infinity`, `-Infinity` unquoted; bytes as standard base64; empty
 * values as ''; arrays and maps as compact JSON, inside which strings and bytes are JSON strings,
 * NaN/±Infinity the strings `"NaN"`/`"Infinity"`/`"-Infinity"`, and empty values `null`.
 * Not escaped for the text format: see {@link escapeLabelValue}.
 */
export function labelValue(value: AnyValue): string {
  switch (typeof value) {
    case 'string':
      return value;
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      return value.toString();
    case 'number':
      return doubleString(value);
    case 'undefined':
      return '';
  }
  if (value instanceof Uint8Array) return base64(value);
  if (Array.isArray(value)) return jsonArray(value);
  if (value instanceof KeyValueList) return jsonObject(value);
  return '';
}

/**
 * Attributes as label pairs sorted by label name. Keys that sanitize to the same name have their values
 * joined with `;` in the code-point order of the original keys (spec: "ordered by the lexicographical order
 * of the original keys"; otlptranslator sorts by key and joins every value). Attributes whose key cannot
 * be represented are left out, and so are labels whose (joined) value is empty, since Prometheus treats an
 * empty label value as an absent label.
 */
export function labelsFromAttributes(attributes: readonly KeyValue[]): [string, string][] {
  const n = attributes.length;
  if (n === 0) return [];
  const names: string[] = new Array(n);
  const order: number[] = [];
  for (let i = 0; i < n; i++) {
    names[i] = labelName(attributes[i].key);
    if (names[i] !== '') order.push(i);
  }
  order.sort((i, j) => {
    const a = names[i];
    const b = names[j];
    if (a !== b) return a < b ? -1 : 1; // label names are ASCII
    return compareCodePoints(attributes[i].key, attributes[j].key) || i - j;
  });
  const out: [string, string][] = [];
  for (let k = 0; k < order.length; ) {
    const name = names[order[k]];
    let value = labelValue(attributes[order[k]].value);
    for (k++; k < order.length && names[order[k]] === name; k++) value += `;${labelValue(attributes[order[k]].value)}`;
    if (value !== '') out.push([name, value]);
  }
  return out;
}

/**
 * `job` and `instance` from resource attributes, as the Collector's Prometheus exporters build them:
 * job = `service.namespace/service.name`, or `service.name` when the namespace is absent or empty, or ''
 * when `service.name` is absent (no `unknown_service` is made up; SDKs set that themselves);
 * instance = `service.instance.id` or ''. Non-string values are converted as {@link labelValue} does.
 * The first of duplicate keys is used.
 */
export function jobAndInstance(resourceAttributes: readonly KeyValue[]): { job: string; instance: string } {
  let name: AnyValue;
  let namespace: AnyValue;
  let instanceId: AnyValue;
  let hasName = false;
  let hasNamespace = false;
  let hasInstance = false;
  for (const kv of resourceAttributes) {
    switch (kv.key) {
      case 'service.name':
        if (!hasName) {
          hasName = true;
          name = kv.value;
        }
        break;
      case 'service.namespace':
        if (!hasNamespace) {
          hasNamespace = true;
          namespace = kv.value;
        }
        break;
      case 'service.instance.id':
        if (!hasInstance) {
          hasInstance = true;
          instanceId = kv.value;
        }
        break;
    }
  }
  let job = '';
  if (hasName) {
    const ns = hasNamespace ? labelValue(namespace) : '';
    job = ns === '' ? labelValue(name) : `${ns}/${labelValue(name)}`;
  }
  return { job, instance: hasInstance ? labelValue(instanceId) : '' };
}

const LABEL_VALUE_SPECIAL = /[\\"\n]/;
const HELP_SPECIAL = /[\\\n]/;

/** Prometheus text format label value escaping: `\` → `\\`, `"` → `\"`, line feed → `\n`. */
export function escapeLabelValue(v: string): string {
  if (!LABEL_VALUE_SPECIAL.test(v)) return v;
  return v.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

/**
 * Prometheus text format (0.0.4) HELP escaping: `\` → `\\`, line feed → `\n` (a `"` stays as it is).
 * OpenMetrics escapes `"` in HELP as well; use {@link escapeLabelValue} there.
 */
export function escapeHelp(v: string): string {
  if (!HELP_SPECIAL.test(v)) return v;
  return v.replace(/[\\\n]/g, (c) => (c === '\n' ? '\\n' : '\\\\'));
}
