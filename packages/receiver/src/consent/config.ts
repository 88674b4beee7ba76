/** The `consent_people:` section (distinct people per consent choice, sonde_consent_people). */
import { z } from 'zod';
import { DEFAULT_PRECISION, MAX_PRECISION, MIN_PRECISION } from './hll';
import type { ConsentPeopleOptions } from './people';

export const consentPeopleSection = z
  .strictObject({
    /** Distinct people per consent category and choice (sonde_consent_people) from consent choice records. */
    enabled: z.boolean().default(true),
    /** HyperLogLog precision: 2^precision registers per sketch; standard error 1.04/√(2^precision) (14: 0.81%). */
    precision: z.number().int().min(MIN_PRECISION).max(MAX_PRECISION).default(DEFAULT_PRECISION),
  })
  .prefault({});

export type ConsentPeopleConfig = z.output<typeof consentPeopleSection>;

export function toConsentPeopleOptions(c: ConsentPeopleConfig): ConsentPeopleOptions {
  return { precision: c.precision };
}
