/**
 * A request body as sent, decoded by its Content-Encoding (zstd, gzip or none), for the stand-in
 * backends of the exporter tests. Its own file with no import of the receiver, so that the root
 * end-to-end tests (which run the built package) can use it too.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { gunzipSync, zstdDecompressSync } from 'node:zlib';

/** `body` decoded by `content-encoding` (a header value, or the request's headers); throws on any other encoding. */
export function decodeBody(body: Buffer, contentEncoding: string | IncomingHttpHeaders | undefined): Buffer {
  const raw = typeof contentEncoding === 'object' ? contentEncoding['content-encoding'] : contentEncoding;
  const encoding = (raw ?? '').trim().toLowerCase();
  switch (encoding) {
    case '':
    case 'identity':
      return body;
    case 'zstd':
      return zstdDecompressSync(body);
    case 'gzip':
      return gunzipSync(body);
    default:
      throw new Error(`decodeBody: unexpected content-encoding ${JSON.stringify(raw)}`);
  }
}
