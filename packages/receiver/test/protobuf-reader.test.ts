/** The wire reader's primitives, including the short-string cache under collisions and evictions. */
import { MalformedPayloadError } from '../src';
import { ProtoReader } from '../src/otlp/protobuf/reader';
import { ProtoWriter } from '../src/otlp/protobuf/writer';

function stringsMessage(values: string[]): Buffer {
  const w = new ProtoWriter();
  for (const v of values) w.bytesField(1, Buffer.from(v, 'utf8'));
  return w.finish();
}

function readAll(buf: Buffer): string[] {
  const r = new ProtoReader(buf);
  const out: string[] = [];
  while (r.pos < buf.length) {
    r.uint32();
    out.push(r.string());
  }
  return out;
}

test('strings read back exactly, through cache hits, collisions and evictions', () => {
  // 20,000 distinct strings of 1–40 bytes (more than the cache's slots), ASCII and not, each read twice.
  const values = Array.from({ length: 20_000 }, (_, i) => {
    const base = i % 3 === 0 ? `é${i}ü` : i % 3 === 1 ? `k${i}` : `attribute.value.${i}.${'x'.repeat(i % 25)}`;
    return base;
  });
  const twice = [...values, ...values.slice().reverse()];
  expect(readAll(stringsMessage(twice))).toEqual(twice);
});

test('cached strings up to and past the cache bound (160 bytes) read back exactly, differing only between sampled bytes', () => {
  // Same length, same first and last four bytes and middle byte: only the full comparison tells them apart.
  const values: string[] = [];
  for (const len of [33, 64, 127, 128, 129, 159, 160, 161, 300])
    for (let k = 0; k < 5; k++) {
      const chars = Array.from({ length: len }, () => 'u');
      chars[5] = String.fromCharCode(97 + k);
      if (k === 4) chars[7] = 'é'; // a two-byte character: the non-ASCII path
      values.push(chars.join(''));
    }
  const twice = [...values, ...values.slice().reverse()];
  expect(readAll(stringsMessage(twice))).toEqual(twice);
});

test('same-length strings that differ in one byte are not confused', () => {
  const values = ['GET', 'PUT', 'GET', 'GEU', 'PUT', 'GET'];
  expect(readAll(stringsMessage(values))).toEqual(values);
});

test('varints: 32-bit, 64-bit as number, int64 negative and large', () => {
  const w = new ProtoWriter();
  w.varint(300)
    .varint(2 ** 40)
    .varint(-1n)
    .varint(9007199254740993n);
  const r = new ProtoReader(w.finish());
  expect(r.uint32()).toBe(300);
  expect(r.uint64Number()).toBe(2 ** 40);
  expect(r.int64()).toBe(-1n);
  expect(r.int64()).toBe(9007199254740993n);
});

test('reads past the end are malformed-payload errors, not range errors', () => {
  const r = new ProtoReader(Buffer.from([0x80, 0x80]));
  expect(() => r.uint32()).toThrow(MalformedPayloadError);
  expect(() => new ProtoReader(Buffer.from([1, 2, 3])).fixed64()).toThrow(/truncated/);
  expect(() => new ProtoReader(Buffer.from([5, 1])).string()).toThrow(/past the end/);
  expect(() => new ProtoReader(Buffer.alloc(11, 0xff)).uint64Number()).toThrow(/longer than 10 bytes/);
});

test('trace and span ids read as the lowercase hex of their bytes, every byte value, repeated trace ids included', () => {
  const ids: Buffer[] = [];
  for (let i = 0; i < 512; i++) {
    const size = i % 2 === 0 ? 16 : 8;
    ids.push(Buffer.from(Array.from({ length: size }, (_, k) => (i * 31 + k * 17) & 0xff)));
    if (i % 5 === 0) ids.push(ids[ids.length - 1]); // the same id again, as spans of one trace bring it
  }
  const w = new ProtoWriter();
  for (const id of ids) w.bytesField(1, id);
  const r = new ProtoReader(w.finish());
  const got = ids.map((id) => {
    r.uint32();
    return r.id(id.length as 8 | 16, 'id');
  });
  expect(got).toEqual(ids.map((id) => id.toString('hex')));
  expect(new Set(ids.flatMap((id) => [...id])).size).toBe(256);
});
