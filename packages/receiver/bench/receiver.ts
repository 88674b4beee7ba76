/**
 * The receiver's built code (dist/, what the CLI runs), typed from its sources so that type-checking
 * the bench does not need a build first.
 */
import { createRequire } from 'node:module';
import type * as Receiver from '../src/index.ts';

export type { AnyValue, InstrumentationScope, KeyValue, Resource, ResourceSpans, Span } from '../src/index.ts';

const receiver = createRequire(import.meta.url)('../dist/index.js') as typeof Receiver;

export const { decodeTraceRequest, KeyValueList } = receiver;
