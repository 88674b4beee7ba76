/**
 * A small seeded mutator for OTLP bodies: protobuf (byte-level and structure-aware) and JSON.
 * Every case draws from its own generator, seeded from (run seed, case index), so a failing case is
 * replayed alone with the same two numbers and the same corpus.
 */

// ---------------------------------------------------------------------------------------------
// Random numbers

/** A seeded 32-bit generator (mulberry32): fast, tiny, and the same sequence everywhere. */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** The generator of case `index` of the run seeded `seed`. */
  static forCase(seed: number, index: number): Rng {
    // A murmur-style finaliser mixes the two, so neighbouring cases start far apart.
    let h = (seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return new Rng((h ^ (h >>> 16)) >>> 0);
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Protobuf: a lenient parse into fields, so that mutations can respect (or break) the structure

/** One field of a message. `children` is set when a length-delimited payload parses as a message. */
interface Field {
  number: number;
  wireType: number;
  /** varint and fixed values. */
  int?: bigint;
  /** length-delimited payload (strings, bytes, packed arrays, sub-messages). */
  bytes?: Buffer;
  children?: Field[];
}

function readVarint(buf: Buffer, pos: number): [bigint, number] | undefined {
  let value = 0n;
  for (let shift = 0n; shift < 70n; shift += 7n) {
    if (pos >= buf.length) return undefined;
    const b = buf[pos++];
    value |= BigInt(b & 0x7f) << shift;
    if (b < 0x80) return [value, pos];
  }
  return undefined;
}

function writeVarint(value: bigint): Buffer {
  const out: number[] = [];
  let v = BigInt.asUintN(64, value);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return Buffer.from(out);
}

/** Parses `buf` as a message, or returns undefined if it is not one (then it is a string or bytes). */
function parseMessage(buf: Buffer, depth = 0): Field[] | undefined {
  if (depth > 24) return undefined;
  const fields: Field[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const key = readVarint(buf, pos);
    if (!key) return undefined;
    pos = key[1];
    const number = Number(key[0] >> 3n);
    const wireType = Number(key[0] & 7n);
    if (number === 0 || number > 536_870_911) return undefined;
    if (wireType === 0) {
      const v = readVarint(buf, pos);
      if (!v) return undefined;
      fields.push({ number, wireType, int: v[0] });
      pos = v[1];
    } else if (wireType === 1 || wireType === 5) {
      const size = wireType === 1 ? 8 : 4;
      if (pos + size > buf.length) return undefined;
      const int = size === 8 ? buf.readBigUInt64LE(pos) : BigInt(buf.readUInt32LE(pos));
      fields.push({ number, wireType, int });
      pos += size;
    } else if (wireType === 2) {
      const len = readVarint(buf, pos);
      if (!len || len[1] + Number(len[0]) > buf.length) return undefined;
      const bytes = buf.subarray(len[1], len[1] + Number(len[0]));
      pos = len[1] + Number(len[0]);
      // A payload of printable ASCII only is a string, even when it happens to parse as a message.
      const text = bytes.length > 0 && bytes.every((b) => b >= 0x20 && b < 0x7f);
      const children = text ? undefined : parseMessage(bytes, depth + 1);
      fields.push({ number, wireType, bytes, children: children && children.length > 0 ? children : undefined });
    } else {
      return undefined;
    }
  }
  return fields;
}

function serialize(fields: Field[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of fields) {
    parts.push(writeVarint(BigInt(f.number) * 8n + BigInt(f.wireType & 7)));
    if (f.wireType === 0) parts.push(writeVarint(f.int ?? 0n));
    else if (f.wireType === 1) {
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(BigInt.asUintN(64, f.int ?? 0n));
      parts.push(b);
    } else if (f.wireType === 5) {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(Number(BigInt.asUintN(32, f.int ?? 0n)));
      parts.push(b);
    } else {
      const payload = f.children ? serialize(f.children) : (f.bytes ?? Buffer.alloc(0));
      parts.push(writeVarint(BigInt(payload.length)), payload);
    }
  }
  return Buffer.concat(parts);
}

/** Every message (field list) in the tree, the top one first. */
function messages(root: Field[]): Field[][] {
  const out: Field[][] = [root];
  for (let i = 0; i < out.length; i++) {
    for (const f of out[i]) if (f.children) out.push(f.children);
  }
  return out;
}

/** Every field in the tree with the message that holds it. */
function fieldsOf(root: Field[]): { parent: Field[]; field: Field }[] {
  return messages(root).flatMap((parent) => parent.map((field) => ({ parent, field })));
}

const INTERESTING_VARINTS = [
  0n,
  1n,
  127n,
  128n,
  0x7fffffffn,
  0xffffffffn,
  2n ** 63n - 1n,
  2n ** 63n,
  2n ** 64n - 1n, // -1 as int64
  2n ** 32n,
];

// Fixed64 values: NaN, ±Infinity, -0, the largest double, 0 and all-ones.
const INTERESTING_FIXED64 = [
  0x7ff8000000000000n,
  0x7ff0000000000000n,
  0xfff0000000000000n,
  0x8000000000000000n,
  0x7fefffffffffffffn,
  0n,
  2n ** 64n - 1n,
];

/** Mutations stop stacking past this size (requests stay well under max_request_body_size). */
const MAX_BODY = 4 << 20;

type ProtoMutation = (rng: Rng, body: Buffer, other: Buffer) => Buffer;

/** Structure-aware mutations: on the parsed tree, then serialized with consistent lengths. */
function onTree(mutate: (rng: Rng, root: Field[], other: Field[]) => void): ProtoMutation {
  return (rng, body, other) => {
    const root = parseMessage(body);
    if (!root || root.length === 0) return bitFlips(rng, body, other);
    mutate(rng, root, parseMessage(other) ?? []);
    return serialize(root);
  };
}

const bitFlips: ProtoMutation = (rng, body) => {
  const out = Buffer.from(body);
  if (out.length === 0) return rng.bytes(1 + rng.int(8));
  for (let n = 1 + rng.int(8); n > 0; n--) out[rng.int(out.length)] ^= 1 << rng.int(8);
  return out;
};

const insertBytes: ProtoMutation = (rng, body) => {
  const at = rng.int(body.length + 1);
  const extra = rng.chance(0.5)
    ? rng.bytes(1 + rng.int(16))
    : Buffer.alloc(1 + rng.int(8), rng.pick([0x00, 0xff, 0x80, 0x7f, 0x0a]));
  return Buffer.concat([body.subarray(0, at), extra, body.subarray(at)]);
};

const deleteBytes: ProtoMutation = (rng, body) => {
  if (body.length === 0) return body;
  const at = rng.int(body.length);
  const n = 1 + rng.int(Math.min(32, body.length - at));
  return Buffer.concat([body.subarray(0, at), body.subarray(at + n)]);
};

const truncate: ProtoMutation = (rng, body) => body.subarray(0, rng.int(body.length));

/**
 * A length prefix made wrong: the field is found in the serialized bytes of the tree and its length
 * varint replaced by another value (off by one, zero, huge, a 10-byte varint), the rest unchanged.
 */
const corruptLength: ProtoMutation = (rng, body, other) => {
  const root = parseMessage(body);
  if (!root) return bitFlips(rng, body, other);
  // Offsets of every length varint, found by walking the bytes as parseMessage did.
  const offsets: { at: number; size: number; len: number }[] = [];
  const walk = (start: number, end: number, depth: number) => {
    let pos = start;
    while (pos < end) {
      const key = readVarint(body, pos);
      if (!key) return;
      pos = key[1];
      const wt = Number(key[0] & 7n);
      if (wt === 0) {
        const v = readVarint(body, pos);
        if (!v) return;
        pos = v[1];
      } else if (wt === 1) pos += 8;
      else if (wt === 5) pos += 4;
      else if (wt === 2) {
        const len = readVarint(body, pos);
        if (!len) return;
        offsets.push({ at: pos, size: len[1] - pos, len: Number(len[0]) });
        if (depth < 24 && parseMessage(body.subarray(len[1], len[1] + Number(len[0])))) {
          walk(len[1], len[1] + Number(len[0]), depth + 1);
        }
        pos = len[1] + Number(len[0]);
      } else return;
    }
  };
  walk(0, body.length, 0);
  if (offsets.length === 0) return bitFlips(rng, body, other);
  const o = rng.pick(offsets);
  const replacement = rng.pick([
    () => writeVarint(BigInt(o.len + 1)),
    () => writeVarint(BigInt(Math.max(0, o.len - 1))),
    () => writeVarint(0n),
    () => writeVarint(BigInt(o.len * 2 + 1)),
    () => writeVarint(0x7fffffffn),
    () => writeVarint(2n ** 64n - 1n),
    () => Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
  ])();
  return Buffer.concat([body.subarray(0, o.at), replacement, body.subarray(o.at + o.size)]);
};

/** A field's number or wire type changed (e.g. a string read as a varint, a span where a resource is). */
const swapTag = onTree((rng, root) => {
  const all = fieldsOf(root);
  const { field } = rng.pick(all);
  if (rng.chance(0.5)) {
    field.number = rng.chance(0.7) ? 1 + rng.int(20) : rng.pick([536_870_911, 19_000, 1000]);
  } else {
    const wireType = rng.pick([0, 1, 2, 5]);
    if (wireType !== field.wireType) {
      field.wireType = wireType;
      if (wireType === 2) {
        field.bytes = field.int !== undefined ? writeVarint(field.int) : Buffer.alloc(0);
        field.children = undefined;
      } else field.int = field.int ?? BigInt((field.bytes ?? field.children ?? []).length);
    }
  }
});

/** Two fields of a message exchange their tags, keeping their payloads. */
const exchangeTags = onTree((rng, root) => {
  const parent = rng.pick(messages(root).filter((m) => m.length > 1));
  if (!parent) return;
  const a = parent[rng.int(parent.length)];
  const b = parent[rng.int(parent.length)];
  [a.number, b.number] = [b.number, a.number];
});

/** A sub-message repeated, once or many times (many resources, scopes, spans, attributes). */
const duplicate = onTree((rng, root) => {
  const candidates = fieldsOf(root).filter(({ field }) => field.children);
  if (candidates.length === 0) return;
  const { parent, field } = rng.pick(candidates);
  // At most about 2 MiB more, so that stacked duplications stay within the request size limit.
  const most = Math.max(1, Math.floor((2 << 20) / serialize([field]).length));
  const times = Math.min(most, rng.chance(0.8) ? 1 + rng.int(3) : 50 + rng.int(500));
  parent.splice(parent.indexOf(field), 0, ...Array.from({ length: times }, () => field));
});

/** A field dropped (a required-looking id, a name, a whole scope). */
const dropField = onTree((rng, root) => {
  const { parent, field } = rng.pick(fieldsOf(root));
  parent.splice(parent.indexOf(field), 1);
});

/** A scalar set to an edge value: huge varints, negative int64, NaN/Infinity doubles, wrong-size ids. */
const edgeValue = onTree((rng, root) => {
  const all = fieldsOf(root).map(({ field }) => field);
  const field = rng.pick(all);
  if (field.wireType === 0) field.int = rng.pick(INTERESTING_VARINTS);
  else if (field.wireType === 1) field.int = rng.pick(INTERESTING_FIXED64);
  else if (field.wireType === 5) field.int = rng.pick([0n, 0xffffffffn, 0x7fc00000n]);
  else {
    field.children = undefined;
    field.bytes = rng.pick([
      () => Buffer.alloc(0),
      () => rng.bytes(1 + rng.int(40)), // ids of a wrong length, invalid UTF-8 strings
      () => Buffer.from([0xc3, 0x28, 0xed, 0xa0, 0x80, 0xf8, 0x88]), // invalid UTF-8
      () => Buffer.alloc(16 + rng.int(3), 0xff),
      () => Buffer.alloc(1024 * (1 + rng.int(64)), 0x61), // a long string
    ])();
  }
});

/** A sub-message nested in itself many levels deep (AnyValue kvlists, arrays). */
const nestDeep = onTree((rng, root) => {
  const candidates = fieldsOf(root).filter(({ field }) => field.children);
  if (candidates.length === 0) return;
  const { field } = rng.pick(candidates);
  const depth = rng.pick([8, 33, 100, 1000, 5000]);
  // Wrapped as bytes, level by level, rather than as a tree: serialize() would recurse once per level.
  let inner = serialize(field.children ?? []);
  for (let i = 0; i < depth; i++) {
    const n = rng.chance(0.5) ? field.number : 1 + rng.int(6);
    inner = Buffer.concat([writeVarint(BigInt(n) * 8n + 2n), writeVarint(BigInt(inner.length)), inner]);
  }
  field.children = undefined;
  field.bytes = inner;
});

/** A sub-message of another corpus entry put into a random message of this one. */
const splice = onTree((rng, root, other) => {
  const donors = fieldsOf(other).map(({ field }) => field);
  if (donors.length === 0) return;
  const target = rng.pick(messages(root));
  target.splice(rng.int(target.length + 1), 0, rng.pick(donors));
});

const PROTO_MUTATIONS: [string, ProtoMutation][] = [
  ['bitFlips', bitFlips],
  ['insertBytes', insertBytes],
  ['deleteBytes', deleteBytes],
  ['truncate', truncate],
  ['corruptLength', corruptLength],
  ['swapTag', swapTag],
  ['exchangeTags', exchangeTags],
  ['duplicate', duplicate],
  ['dropField', dropField],
  ['edgeValue', edgeValue],
  ['nestDeep', nestDeep],
  ['splice', splice],
];

/** One to four stacked mutations of `body`; `other` is a second corpus entry for splices. */
export function mutateProtobuf(rng: Rng, body: Buffer, other: Buffer): { body: Buffer; steps: string[] } {
  let out = body;
  const steps: string[] = [];
  for (let n = 1 + rng.int(rng.chance(0.7) ? 2 : 4); n > 0; n--) {
    const [name, mutate] = rng.pick(PROTO_MUTATIONS);
    out = mutate(rng, out, other);
    steps.push(name);
    if (out.length > MAX_BODY) break;
  }
  return { body: out, steps };
}

// ---------------------------------------------------------------------------------------------
// JSON

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Every value in the tree with a way to replace it. */
function slots(root: Json): { value: Json; set: (v: Json) => void; key?: string; parent?: Json }[] {
  const out: { value: Json; set: (v: Json) => void; key?: string; parent?: Json }[] = [];
  const visit = (value: Json, set: (v: Json) => void, key?: string, parent?: Json) => {
    out.push({ value, set, key, parent });
    if (Array.isArray(value)) {
      value.forEach((v, i) => {
        visit(
          v,
          (x) => {
            value[i] = x;
          },
          String(i),
          value,
        );
      });
    } else if (value && typeof value === 'object') {
      for (const k of Object.keys(value)) {
        visit(
          value[k],
          (x) => {
            value[k] = x;
          },
          k,
          value,
        );
      }
    }
  };
  visit(root, () => {});
  return out.slice(1); // not the root itself
}

const OTHER_TYPES: Json[] = [null, true, 0, -1, '', 'x', [], {}, [null], { a: 1 }];
const HUGE_NUMBERS = [
  '1e309',
  '-1e309',
  '99999999999999999999999999999',
  '18446744073709551616',
  '9223372036854775808',
  '-9223372036854775809',
  '1.5',
  '-0',
  '1e-400',
  '0x10',
];
const INT64_FORMS = ['"123"', '123', '" 12"', '"1e3"', '"-1"', '"18446744073709551615"', '"0x1f"', '""', '"NaN"'];
const BAD_IDS = [
  '"zz"',
  '"5B8EFFF798038103D269B633813FC60C"',
  '"5b8efff798038103d269b633813fc60"',
  '"5b8efff798038103d269b633813fc60c00"',
  '"W47/95gDgQPSabYzgT/GDA=="',
  '"00000000000000000000000000000000"',
  '12345',
  '"\\u0000\\u0000"',
];

type JsonMutation = (rng: Rng, doc: Json, other: Json) => Json;

/** Marks a value to be written as raw JSON text (a number JSON.stringify cannot write, an id, ...). */
const RAW = '\u0000raw:';

const typeSwap: JsonMutation = (rng, doc) => {
  const s = rng.pick(slots(doc));
  s?.set(structuredClone(rng.pick(OTHER_TYPES)));
  return doc;
};

const hugeNumber: JsonMutation = (rng, doc) => {
  const candidates = slots(doc).filter((s) => typeof s.value === 'number' || typeof s.value === 'string');
  rng.pick(candidates)?.set(RAW + rng.pick(HUGE_NUMBERS));
  return doc;
};

const int64Form: JsonMutation = (rng, doc) => {
  const candidates = slots(doc).filter((s) => s.key && /nano|count|int|sum|min|max|bucket|time/i.test(s.key));
  rng.pick(candidates)?.set(RAW + rng.pick(INT64_FORMS));
  return doc;
};

const badId: JsonMutation = (rng, doc) => {
  const candidates = slots(doc).filter((s) => s.key && /Id$/.test(s.key));
  rng.pick(candidates)?.set(RAW + rng.pick(BAD_IDS));
  return doc;
};

const unknownField: JsonMutation = (rng, doc) => {
  const objects = slots(doc)
    .map((s) => s.value)
    .filter((v): v is { [key: string]: Json } => !!v && typeof v === 'object' && !Array.isArray(v));
  const target = rng.pick(objects.length > 0 ? objects : [doc as { [key: string]: Json }]);
  if (target && typeof target === 'object') {
    target[rng.pick(['unknown', '__proto__', 'constructor', 'resource_spans', 'trace_id', `f${rng.int(100)}`])] =
      structuredClone(rng.pick(OTHER_TYPES));
  }
  return doc;
};

const dropKey: JsonMutation = (rng, doc) => {
  const s = rng.pick(slots(doc).filter((x) => x.parent && !Array.isArray(x.parent)));
  if (s?.parent && s.key && typeof s.parent === 'object') delete (s.parent as Record<string, Json>)[s.key];
  return doc;
};

const duplicateElement: JsonMutation = (rng, doc) => {
  const arrays = slots(doc)
    .map((s) => s.value)
    .filter((v): v is Json[] => Array.isArray(v) && v.length > 0);
  const a = rng.pick(arrays);
  if (a) {
    const item = a[rng.int(a.length)];
    const most = Math.max(1, Math.floor((2 << 20) / (JSON.stringify(item) ?? '').length));
    const times = Math.min(most, rng.chance(0.8) ? 1 + rng.int(3) : 100 + rng.int(1000));
    // Copies, not the same object again: a later mutation inside one must not change them all.
    for (let i = 0; i < times; i++) a.push(structuredClone(item));
  }
  return doc;
};

/** A value replaced by one nested thousands of levels deep, written as raw text (no recursion here). */
const deepNesting: JsonMutation = (rng, doc) => {
  const depth = rng.pick([33, 200, 5000, 50_000]);
  const raw = rng.pick([
    () => '['.repeat(depth) + ']'.repeat(depth),
    () => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`,
    () => `${'{"kvlistValue":{"values":[{"key":"k","value":'.repeat(depth)}{"intValue":"1"}${'}]}}'.repeat(depth)}`,
    () => `${'{"arrayValue":{"values":['.repeat(depth)}{"stringValue":"x"}${']}}'.repeat(depth)}`,
  ])();
  rng.pick(slots(doc))?.set(RAW + raw);
  return doc;
};

const spliceJson: JsonMutation = (rng, doc, other) => {
  const donor = rng.pick(slots(other));
  const target = rng.pick(slots(doc));
  if (donor && target) target.set(structuredClone(donor.value));
  return doc;
};

const JSON_MUTATIONS: [string, JsonMutation][] = [
  ['typeSwap', typeSwap],
  ['hugeNumber', hugeNumber],
  ['int64Form', int64Form],
  ['badId', badId],
  ['unknownField', unknownField],
  ['dropKey', dropKey],
  ['duplicateElement', duplicateElement],
  ['deepNesting', deepNesting],
  ['spliceJson', spliceJson],
];

/** JSON.stringify, with RAW-marked strings written as their raw text. */
function stringify(doc: Json): string {
  return JSON.stringify(doc, (_k, v: Json) => v).replace(
    /"\\u0000raw:((?:[^"\\]|\\.)*)"/g,
    (_m, raw: string) => JSON.parse(`"${raw}"`) as string,
  );
}

/** Text-level damage after the structural mutations: truncation, a stray byte, invalid UTF-8. */
function textDamage(rng: Rng, text: Buffer): Buffer {
  return rng.pick([
    () => text.subarray(0, rng.int(text.length)),
    () => {
      const at = rng.int(text.length + 1);
      return Buffer.concat([
        text.subarray(0, at),
        Buffer.from(rng.pick(['"', '{', ']', ',', '\\', '\u2028'])),
        text.subarray(at),
      ]);
    },
    () => {
      const at = rng.int(text.length + 1);
      return Buffer.concat([text.subarray(0, at), Buffer.from([0xff, 0xfe, 0xc3]), text.subarray(at)]);
    },
    () => Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), text]), // a byte order mark
  ])();
}

export function mutateJson(rng: Rng, body: Buffer, other: Buffer): { body: Buffer; steps: string[] } {
  let doc = JSON.parse(body.toString('utf8')) as Json;
  const donor = JSON.parse(other.toString('utf8')) as Json;
  const steps: string[] = [];
  for (let n = 1 + rng.int(rng.chance(0.7) ? 2 : 4); n > 0; n--) {
    const [name, mutate] = rng.pick(JSON_MUTATIONS);
    doc = mutate(rng, doc, donor);
    steps.push(name);
    if (name === 'duplicateElement' && stringify(doc).length > MAX_BODY) break;
  }
  let out: Buffer = Buffer.from(stringify(doc), 'utf8');
  if (rng.chance(0.15)) {
    out = textDamage(rng, out);
    steps.push('textDamage');
  }
  return { body: out, steps };
}
