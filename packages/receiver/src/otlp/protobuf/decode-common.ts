/**
 * Protobuf decoding of opentelemetry-proto `common` and `resource` messages into the model.
 * Field numbers are those of opentelemetry-proto v1 (common.proto, resource.proto).
 */
import { type AnyValue, type InstrumentationScope, type KeyValue, KeyValueList, type Resource } from '../../model';
import { MalformedPayloadError, TooDeepError } from '../errors';
import { type DecodeLimits, STRUCTURES } from '../limits';
import { type ProtoReader, WireType } from './reader';

/** Decodes a length-delimited AnyValue. `depth` is the nesting level of this value (1 for an attribute's value). */
export function decodeAnyValue(r: ProtoReader, limits: DecodeLimits, depth: number): AnyValue {
  if (depth > limits.maxAnyValueDepth) throw new TooDeepError(limits.maxAnyValueDepth);
  const end = r.delimitedEnd();
  let value: AnyValue;
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case (1 << 3) | WireType.LEN:
        value = r.string();
        break;
      case (2 << 3) | WireType.VARINT:
        value = r.bool();
        break;
      case (3 << 3) | WireType.VARINT:
        value = r.int64();
        break;
      case (4 << 3) | WireType.I64:
        value = r.double();
        break;
      case (5 << 3) | WireType.LEN:
        value = decodeArrayValue(r, limits, depth);
        break;
      case (6 << 3) | WireType.LEN:
        value = new KeyValueList(decodeKeyValueList(r, limits, depth));
        break;
      case (7 << 3) | WireType.LEN:
        value = r.bytes();
        break;
      default:
        r.skip(tag & 7);
    }
  }
  checkEnd(r, end);
  return value;
}

function decodeArrayValue(r: ProtoReader, limits: DecodeLimits, depth: number): AnyValue[] {
  const end = r.delimitedEnd();
  r.take(STRUCTURES.list);
  const values: AnyValue[] = [];
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === ((1 << 3) | WireType.LEN)) {
      r.take(STRUCTURES.value);
      values.push(decodeAnyValue(r, limits, depth + 1));
    } else r.skip(tag & 7);
  }
  checkEnd(r, end);
  return values;
}

function decodeKeyValueList(r: ProtoReader, limits: DecodeLimits, depth: number): KeyValue[] {
  const end = r.delimitedEnd();
  r.take(STRUCTURES.list);
  const values: KeyValue[] = [];
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === ((1 << 3) | WireType.LEN)) {
      values.push(decodeKeyValue(r, limits, depth + 1));
    } else r.skip(tag & 7);
  }
  checkEnd(r, end);
  return values;
}

/**
 * Decodes one length-delimited KeyValue whose value sits at nesting level `depth`; `at`: where its
 * field starts in the body (-1 for one nested in a value).
 */
export function decodeKeyValue(r: ProtoReader, limits: DecodeLimits, depth = 1, at = -1): KeyValue {
  const end = r.delimitedEnd();
  r.take(STRUCTURES.value);
  let key = '';
  let value: AnyValue;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === ((1 << 3) | WireType.LEN)) key = r.string();
    else if (tag === ((2 << 3) | WireType.LEN)) value = decodeAnyValue(r, limits, depth);
    else r.skip(tag & 7);
  }
  checkEnd(r, end);
  return { key, value, at };
}

/**
 * Appends one attribute to `into`, naming it in the error path if it fails. Called right after the
 * field's tag: attribute fields are numbered below 16, so the tag is the byte before (a tag written in
 * more bytes than needed gives an `at` that no patch can apply, and the batch is encoded anew).
 */
export function decodeAttributeInto(r: ProtoReader, limits: DecodeLimits, into: KeyValue[], field: string): void {
  const index = into.length;
  try {
    into.push(decodeKeyValue(r, limits, 1, r.pos - 1));
  } catch (err) {
    throw atPath(err, `${field}[${index}]`);
  }
  if (index >= r.mostAttributes) r.mostAttributes = index + 1;
}

export function decodeResource(r: ProtoReader, limits: DecodeLimits): Resource {
  const end = r.delimitedEnd();
  const attributes: KeyValue[] = [];
  let droppedAttributesCount = 0;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === ((1 << 3) | WireType.LEN)) decodeAttributeInto(r, limits, attributes, 'attributes');
    else if (tag === ((2 << 3) | WireType.VARINT)) droppedAttributesCount = r.uint32();
    else r.skip(tag & 7);
  }
  checkEnd(r, end);
  return { attributes, droppedAttributesCount };
}

export function decodeScope(r: ProtoReader, limits: DecodeLimits): InstrumentationScope {
  const end = r.delimitedEnd();
  let name = '';
  let version = '';
  const attributes: KeyValue[] = [];
  let droppedAttributesCount = 0;
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case (1 << 3) | WireType.LEN:
        name = r.string();
        break;
      case (2 << 3) | WireType.LEN:
        version = r.string();
        break;
      case (3 << 3) | WireType.LEN:
        decodeAttributeInto(r, limits, attributes, 'attributes');
        break;
      case (4 << 3) | WireType.VARINT:
        droppedAttributesCount = r.uint32();
        break;
      default:
        r.skip(tag & 7);
    }
  }
  checkEnd(r, end);
  return { name, version, attributes, droppedAttributesCount };
}

/** A sub-message must end exactly at its declared length. */
export function checkEnd(r: ProtoReader, end: number): void {
  if (r.pos !== end) throw new MalformedPayloadError('a field runs past the end of its enclosing message');
}

/**
 * Prefixes the location of a failure to a decoding error, so that the client is told where the
 * problem is (`resourceSpans[0].scopeSpans[2].spans[7].attributes[3]: truncated protobuf ...`).
 */
export function atPath(err: unknown, segment: string): unknown {
  if (err instanceof MalformedPayloadError) return err.prefixPath(segment);
  if (err instanceof RangeError) return new MalformedPayloadError(`invalid protobuf: ${err.message}`, segment);
  return err;
}
