import { ProtoReader } from '../src/otlp/protobuf/reader';
import { ProtoWriter } from '../src/otlp/protobuf/writer';

describe('ProtoWriter', () => {
  // A sub-message is written in place behind a one-byte length prefix, moved up when longer: every
  // prefix width must read back.
  it.each([0, 1, 127, 128, 300, 16_383, 16_384, 70_000, 2_097_151, 2_097_152])(
    'writes a sub-message of %i bytes that reads back, nested and followed by a field',
    (size) => {
      const text = 'x'.repeat(size);
      const w = new ProtoWriter(16);
      w.message(1, (outer) => {
        outer.message(2, (inner) => inner.stringField(3, text));
        outer.varintField(4, 7);
      });
      w.stringField(5, 'é-after');
      const r = new ProtoReader(w.finish());
      expect(r.uint32()).toBe((1 << 3) | 2);
      const outerEnd = r.delimitedEnd();
      expect(r.uint32()).toBe((2 << 3) | 2);
      const innerEnd = r.delimitedEnd();
      if (size > 0) {
        expect(r.uint32()).toBe((3 << 3) | 2);
        expect(r.string()).toBe(text);
      }
      expect(r.pos).toBe(innerEnd);
      expect(r.uint32()).toBe((4 << 3) | 0);
      expect(r.uint32()).toBe(7);
      expect(r.pos).toBe(outerEnd);
      expect(r.uint32()).toBe((5 << 3) | 2);
      expect(r.string()).toBe('é-after');
      expect(r.pos).toBe(w.finish().length);
    },
  );
});

describe('ProtoWriter.hexField', () => {
  it.each(['', '0af1', '5b8efff798038103d269b633813fc60c', '0a1', '0az1', 'ab'.repeat(200)])(
    'writes %j as Buffer.from(hex, "hex") reads it',
    (hex) => {
      const expected = new ProtoWriter().bytesField(9, Buffer.from(hex, 'hex')).finish();
      expect(new ProtoWriter(4).hexField(9, hex).finish()).toEqual(expected);
    },
  );

  it('writes an empty string value of a oneof (stringAlways), which stringField omits', () => {
    expect([...new ProtoWriter().stringAlways(1, '').finish()]).toEqual([0x0a, 0]);
    expect(new ProtoWriter().stringField(1, '').finish().length).toBe(0);
  });
});

describe('ProtoWriter strings', () => {
  // Short ASCII strings are copied char by char, others encoded natively: each must read back.
  it.each(['a', 'x'.repeat(63), 'x'.repeat(64), 'x'.repeat(200), 'héllo', `${'x'.repeat(60)}é`, '日本語', '😀 emoji'])(
    'writes %j as its UTF-8 bytes',
    (text) => {
      const bytes = new ProtoWriter(2).stringField(3, text).stringAlways(4, text).finish();
      const expected = new ProtoWriter().bytesField(3, Buffer.from(text)).bytesField(4, Buffer.from(text)).finish();
      expect(bytes).toEqual(expected);
    },
  );
});
