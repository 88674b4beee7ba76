/**
 * A patch on a request's protobuf body: the changes a processor made to the decoded batch, written as
 * edits of the bytes received, so that the stores and exporters get the changed request by copying the
 * received bytes around the edits instead of encoding the whole batch again.
 *
 * Each edit names a field of the body by the offset of its first byte (its tag), as the protobuf
 * decoder records it on the items it builds (`at` on attributes, log records and spans): the field is
 * removed, or its content is written anew from the model (the tag is kept). `applyPatch` walks the
 * body's messages down to each edit, copies every field that holds none, writes the edited ones, and
 * writes the new lengths of the messages around them. An edit inside a field that is itself replaced
 * is left out (the outer one writes the item from the model, which holds both changes).
 *
 * Only a processor that records every change it makes as an edit may keep the patch (Processor
 * `patchesRaw`, pipeline.ts); any other change to the batch drops it, and the batch is encoded anew.
 */
import { ProtoWriter } from './writer';

const LEN = 2;

/** One edit: the field at `at` removed (`write` null), or its content written by `write`. */
interface Edit {
  at: number;
  write: ((w: ProtoWriter) => void) | null;
}

export class RawPatch {
  readonly edits: Edit[] = [];

  /** Removes the field starting at `at`. */
  remove(at: number): void {
    this.edits.push({ at, write: null });
  }

  /** Replaces the content of the (length-delimited) field starting at `at` by what `write` writes. */
  replace(at: number, write: (w: ProtoWriter) => void): void {
    this.edits.push({ at, write });
  }
}

/** The patch cannot be applied (an offset that is no field's start): the caller encodes the model. */
export class PatchError extends Error {}

/** `raw` with `patch` applied, as a new buffer. Throws PatchError when an edit does not name a field. */
export function applyPatch(raw: Buffer, patch: RawPatch): Buffer {
  const edits = inOrder(patch.edits);
  const w = new ProtoWriter(raw.length + 64);
  const cursor = { i: 0 };
  copyMessage(raw, 0, raw.length, edits, cursor, w);
  if (cursor.i < edits.length) throw new PatchError(`no field starts at offset ${edits[cursor.i].at}`);
  return w.finish();
}

/** The edits by offset (as recorded, when they are: attributes are visited in the order they arrived). */
function inOrder(edits: Edit[]): Edit[] {
  for (let i = 1; i < edits.length; i++) {
    if (edits[i].at < edits[i - 1].at) return edits.slice().sort((a, b) => a.at - b.at);
  }
  return edits;
}

/** Writes the message content raw[start, end) with the edits that fall in it (from `cursor.i`) applied. */
function copyMessage(raw: Buffer, start: number, end: number, edits: Edit[], cursor: { i: number }, w: ProtoWriter) {
  let pos = start;
  let copyFrom = start;
  while (cursor.i < edits.length) {
    const edit = edits[cursor.i];
    if (edit.at >= end) break;
    if (edit.at < pos) throw new PatchError(`no field starts at offset ${edit.at}`);
    const fieldStart = pos;
    let varintStart = pos;
    // Tags and lengths under 128 (most) in one byte, read here.
    let tag = raw[pos];
    if (tag < 0x80 && pos < end) pos++;
    else {
      tag = readVarint(raw, pos, end);
      pos = varintEnd;
    }
    let contentStart = pos;
    switch (tag & 7) {
      case 0:
        readVarint(raw, pos, end);
        pos = varintEnd;
        break;
      case 1:
        pos += 8;
        break;
      case 5:
        pos += 4;
        break;
      case LEN: {
        varintStart = pos;
        const b = raw[pos];
        if (b < 0x80 && pos < end) {
          contentStart = pos + 1;
          pos = contentStart + b;
        } else {
          const length = readVarint(raw, pos, end);
          contentStart = varintEnd;
          pos = contentStart + length;
        }
        break;
      }
      default:
        throw new PatchError(`wire type ${tag & 7} at offset ${fieldStart}`);
    }
    if (pos > end) throw new PatchError(`a field runs past its message at offset ${fieldStart}`);
    if (pos <= edit.at) continue;
    // This field holds the edit.
    w.raw(raw, copyFrom, fieldStart);
    const field = tag >>> 3;
    if (edit.at === fieldStart) {
      cursor.i++;
      while (cursor.i < edits.length && edits[cursor.i].at < pos) cursor.i++;
      if (edit.write) {
        if ((tag & 7) !== LEN) throw new PatchError(`field ${field} at offset ${fieldStart} is not a message`);
        const at = w.begin(field);
        edit.write(w);
        w.end(at);
      }
    } else {
      if ((tag & 7) !== LEN || edit.at < contentStart) throw new PatchError(`no field starts at offset ${edit.at}`);
      // As many bytes kept for the length as it had: the content is not moved when its length still fits them.
      const prefix = contentStart - varintStart;
      const at = w.begin(field, prefix);
      copyMessage(raw, contentStart, pos, edits, cursor, w);
      w.end(at, prefix);
    }
    copyFrom = pos;
  }
  w.raw(raw, copyFrom, end);
}

/** Where the last varint read ended (module state: no object per varint on this path). */
let varintEnd = 0;

function readVarint(buf: Buffer, pos: number, end: number): number {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= end) throw new PatchError('truncated varint');
    const b = buf[pos++];
    value += (b & 0x7f) * scale;
    if (b < 0x80) {
      varintEnd = pos;
      return value;
    }
    scale *= 128;
  }
  throw new PatchError('varint longer than 10 bytes');
}
