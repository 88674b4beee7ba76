/**
 * The trace store's reader thread: the blob store's reader loop (src/blob-store/reader-loop.ts)
 * answering the Tempo API's queries (trace by id, search, tag names and values).
 */
import { runReader } from '../blob-store/reader-loop';
import { TraceDb } from './db';
import type { ReaderQuery } from './reader-protocol';
import { search, tagNames, tagValues } from './search';

runReader<ReaderQuery, TraceDb>(
  'trace_store',
  (settings) =>
    TraceDb.open(settings.path, { reader: true, indexedAttributes: settings.indexedAttributes as string[] }),
  (db, m, checkpoint) => {
    switch (m.op) {
      case 'trace': {
        // One buffer with the chunks end to end (one transfer), and their lengths.
        const chunks = db.traceChunks(Buffer.from(m.traceId), m.startNs, m.endNs, checkpoint);
        const data = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
        let at = 0;
        for (const c of chunks) {
          data.set(c, at);
          at += c.length;
        }
        return { result: { data, lengths: chunks.map((c) => c.length) }, transfer: [data.buffer] };
      }
      case 'search':
        return { result: search(db, m.query, m.options, checkpoint) };
      case 'tagNames':
        return { result: tagNames(db, checkpoint) };
      case 'tagValues':
        return { result: tagValues(db, m.tag, m.limit) };
    }
  },
);
