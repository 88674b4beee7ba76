// Buffer's native slice decoders. They have been on Buffer.prototype since Node 0.x and are what
// `buf.toString(encoding, start, end)` calls after checking its arguments; the protobuf reader calls
// them directly because it has already bounds-checked the range.
declare global {
  interface Buffer {
    hexSlice(start: number, end: number): string;
    latin1Slice(start: number, end: number): string;
    utf8Slice(start: number, end: number): string;
  }
}

export {};
