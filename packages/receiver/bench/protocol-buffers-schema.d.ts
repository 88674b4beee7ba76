/** The part of protocol-buffers-schema's API (v3, which ships no types) that the bench uses. */
declare module 'protocol-buffers-schema' {
  import type { ProtoSchema } from 'pbf/compile';

  interface ParsedSchema extends ProtoSchema {
    imports: string[];
    messages: ProtoSchema[];
    enums: ProtoSchema[];
  }

  function parse(source: string | Buffer): ParsedSchema;
  export default parse;
}
