/**
 * sonde-receiver [--config sonde.yaml]
 *
 * Starts the receiver on its defaults (OTLP/HTTP :4318, OTLP/gRPC :4317, admin :9464), or on the
 * settings of a YAML file (also found through SONDE_CONFIG); SONDE_* variables override the file.
 * SIGTERM/SIGINT drain in-flight work and exit 0.
 */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config/load';
import { createLogger } from './logger';
import { startReceiver } from './receiver';

const USAGE = `usage: sonde-receiver [--config FILE]

  --config FILE   YAML configuration (default: $SONDE_CONFIG, else built-in defaults)
  --help          this text

Environment overrides: SONDE_OTLP_HTTP_ADDR, SONDE_OTLP_GRPC_ADDR, SONDE_ADMIN_ADDR,
SONDE_DATA_DIR, SONDE_LOG_LEVEL. See the README for every setting and its default.`;

async function main(): Promise<void> {
  let values: { config?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}\n`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  let config: ReturnType<typeof loadConfig>;
  const warnings: string[] = [];
  try {
    config = loadConfig({ file: values.config ?? process.env.SONDE_CONFIG, onWarning: (m) => warnings.push(m) });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`sonde-receiver: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(config.log.level);
  for (const warning of warnings) logger.warn(warning);
  // The logger writes synchronously (see logger.ts), so every line is out when process.exit runs.
  const exit = (code: number) => process.exit(code);
  let receiver: Awaited<ReturnType<typeof startReceiver>> | undefined;
  let signals = 0;
  const shutdown = (started: NonNullable<typeof receiver>) => {
    logger.info({ timeoutMs: config.shutdown_timeout }, 'shutting down: draining in-flight requests');
    // Draining the listeners is bounded by shutdown_timeout each; this bounds the whole of it.
    setTimeout(
      () => {
        logger.error('shutdown took longer than twice shutdown_timeout: exiting without finishing');
        exit(1);
      },
      2 * config.shutdown_timeout + 1000,
    ).unref();
    started.close().then(
      () => exit(0),
      (err) => {
        logger.error({ err }, 'error while shutting down');
        exit(1);
      },
    );
  };
  const stop = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: exiting without draining');
      exit(1);
      return;
    }
    logger.info({ signal }, 'signal received');
    // During start-up (stores replaying their logs, listeners binding) the stop waits for it to end.
    if (receiver) shutdown(receiver);
  };
  // Before start-up, so that a signal during it is a clean stop, not Node's default (killed by it).
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  try {
    receiver = await startReceiver(config, { logger });
  } catch (err) {
    logger.fatal({ err }, (err as Error).message);
    exit(1);
    return;
  }
  if (signals > 0) shutdown(receiver);
}

void main();
