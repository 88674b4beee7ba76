/**
 * The value types the components' config sections are written with: listen addresses, sizes
 * ("64MiB"), durations ("10s") and positive integers, each parsed by units.ts with an error text that
 * says what is expected (the Collector's confignet/configopaque-style shared types).
 */
import { z } from 'zod';
import { type ListenAddress, parseAddress, parseDuration, parseSize } from './units';

/** A zod transform from a parser that returns either the value or an error text. */
export function converted<In, Out>(parse: (v: In) => Out | string, isValue: (r: Out | string) => r is Out) {
  return (value: In, ctx: z.RefinementCtx): Out => {
    const result = parse(value);
    if (isValue(result)) return result;
    ctx.addIssue({ code: 'custom', message: result as string });
    return z.NEVER;
  };
}

const isNumber = (r: number | string): r is number => typeof r === 'number';

/** "host:port", "[v6]:port", ":port" or "off". */
export const address = z
  .string()
  .transform(
    converted<string, ListenAddress | 'off'>(
      parseAddress,
      (r): r is ListenAddress | 'off' => typeof r !== 'string' || r === 'off',
    ),
  );

/** Bytes, as a number or with a unit ("64MiB"). */
export const size = z.union([z.number(), z.string()]).transform(converted(parseSize, isNumber));

/** Milliseconds, as a number or with a unit ("10s"). */
export const duration = z.union([z.number(), z.string()]).transform(converted(parseDuration, isNumber));

export const positiveInt = z.number().int().positive();
