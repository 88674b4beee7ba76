/**
 * Resource detection that keeps what operating a service needs and leaves out what identifies a
 * person or may hold a secret. The detectors are OpenTelemetry's (env, process, os, host; or those
 * named in OTEL_NODE_RESOURCE_DETECTORS), each wrapped so that the keys of PERSONAL_RESOURCE_KEYS
 * never leave it:
 * - `host.name`, `host.id`: a laptop's or a desktop's name and machine id identify its owner;
 * - `process.owner`: a user name;
 * - `process.command`, `process.command_line`, `process.command_args`, `process.executable.path`,
 *   `process.executable.name` (Node's process.title, often the full path): command lines carry tokens
 *   and passwords (`--db-password=...`), and paths carry home directories (`/home/<user>/...`).
 * What stays: `service.*`, `telemetry.*`, `host.arch`, `os.type`, `os.version`, container and
 * Kubernetes ids, `process.pid`, `process.runtime.*`.
 *
 * Attributes the operator sets (OTEL_RESOURCE_ATTRIBUTES, the `resourceAttributes` option) are kept
 * as given: they are a choice, not a detection. A dropped key comes back when listed in the
 * `resourceAllow` option or SONDE_RESOURCE_ALLOW (comma-separated), e.g. `host.name` on servers
 * where it names a machine, not a person.
 */
import type { Attributes } from '@opentelemetry/api';
import {
  type DetectedResource,
  defaultResource,
  envDetector,
  hostDetector,
  osDetector,
  processDetector,
  type Resource,
  type ResourceDetectionConfig,
  type ResourceDetector,
  resourceFromAttributes,
  serviceInstanceIdDetector,
} from '@opentelemetry/resources';
import { defaultInstanceAttributes } from './instance';

export const PERSONAL_RESOURCE_KEYS: readonly string[] = [
  'host.name',
  'host.id',
  'process.owner',
  'process.command',
  'process.command_line',
  'process.command_args',
  'process.executable.path',
  'process.executable.name',
];

const BY_NAME: Record<string, ResourceDetector> = {
  env: envDetector,
  process: processDetector,
  os: osDetector,
  host: hostDetector,
  serviceinstance: serviceInstanceIdDetector,
};

/** The allowed keys: the option, else SONDE_RESOURCE_ALLOW. */
export function resourceAllowList(env: NodeJS.ProcessEnv, option: string[] | undefined): string[] {
  if (option) return option;
  return (env.SONDE_RESOURCE_ALLOW ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** A detector whose result never holds the dropped keys. */
function withoutKeys(inner: ResourceDetector, drop: ReadonlySet<string>): ResourceDetector {
  return {
    detect(config?: ResourceDetectionConfig): DetectedResource {
      const detected = inner.detect(config);
      if (!detected.attributes) return detected;
      const attributes = { ...detected.attributes };
      for (const key of Object.keys(attributes)) if (drop.has(key)) delete attributes[key];
      return { ...detected, attributes };
    },
  };
}

/**
 * The detectors NodeSDK gets: OTEL_NODE_RESOURCE_DETECTORS (`all`, `none` or names), else env,
 * process, os and host; every one but env filtered.
 */
export function resourceDetectors(env: NodeJS.ProcessEnv, allow: string[]): ResourceDetector[] {
  const drop = new Set(PERSONAL_RESOURCE_KEYS.filter((k) => !allow.includes(k)));
  const names = (env.OTEL_NODE_RESOURCE_DETECTORS ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  let chosen: string[];
  if (names.length === 0) chosen = ['env', 'process', 'os', 'host'];
  else if (names.includes('none')) chosen = [];
  else if (names.includes('all')) chosen = Object.keys(BY_NAME);
  else chosen = names.filter((n) => n in BY_NAME);
  return chosen.map((n) => (n === 'env' ? BY_NAME[n] : withoutKeys(BY_NAME[n], drop)));
}

/**
 * The resource NodeSDK starts from (the detectors' attributes are merged into it): the SDK's default
 * (`telemetry.sdk.*`, `service.name` unknown_service), `telemetry.distro.name=sonde` and its version,
 * then the `resourceAttributes` option.
 */
export function baseResource(version: string, attributes: Attributes | undefined): Resource {
  return defaultResource().merge(
    resourceFromAttributes({
      'telemetry.distro.name': 'sonde',
      'telemetry.distro.version': version,
      ...defaultInstanceAttributes(),
      ...attributes,
    }),
  );
}
