/**
 * The receiver's built code (dist/, what the CLI runs), typed from its sources so that type-checking
 * the bench does not need a build first.
 */
import { createRequire } from 'node:module';
import type * as Receiver from '../src/index.ts';
import type * as Reader from '../src/otlp/protobuf/reader.ts';

export type { AnyValue, InstrumentationScope, KeyValue, Resource, ResourceSpans, Span } from '../src/index.ts';

const require = createRequire(import.meta.url);
const receiver = require('../dist/index.js') as typeof Receiver;
const reader = require('../dist/otlp/protobuf/reader.js') as typeof Reader;

export const { decodeTraceRequest, KeyValueList } = receiver;
export const { ProtoReader } = reader;
