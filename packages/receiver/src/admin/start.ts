/**
 * Starting the admin listener from the `admin:` and `debug:` sections: the admin app with the query
 * APIs of the stores that are on (Tempo's, Loki's) and the erasure call, behind admin.tls and
 * admin.auth.
 */
import type { Components } from '../components';
import type { ReceiverConfig } from '../config/schema';
import { createErasureApi, ErasedLogSource } from '../erasure/api';
import { toServerLimits } from '../intake/config';
import { boundAddress, closeHttp, listen, type StartedListener } from '../intake/listeners';
import { createLokiApi } from '../log-store/api';
import { toLokiApiOptions } from '../log-store/config';
import type { Logger } from '../logger';
import type { ListenerSecurity } from '../security/config';
import type { SelfMetrics } from '../self-metrics';
import { createTempoApi } from '../trace-store/api';
import { toAdminOptions } from './config';
import { type AdminState, createAdminApp } from './server';

/** The admin listener, or undefined when admin.address is "off". */
export async function startAdmin(
  config: Pick<ReceiverConfig, 'admin' | 'debug' | 'log_store'>,
  components: Components,
  security: Pick<ListenerSecurity, 'adminTls' | 'adminTokens'>,
  state: AdminState,
  metrics: SelfMetrics,
  logger: Logger,
): Promise<StartedListener | undefined> {
  if (config.admin.address === 'off') return undefined;
  const { traceStore, logStore, erasure } = components;
  const routers = [];
  if (traceStore) routers.push(createTempoApi(traceStore, logger, erasure));
  if (logStore) {
    const source = erasure ? new ErasedLogSource(logStore, erasure) : logStore;
    const onLimit = (limit: string) => metrics.limitHits.inc({ signal: 'logs', limit });
    routers.push(
      createLokiApi(source, toLokiApiOptions(config.log_store, onLimit, logger.child({ component: 'loki-api' }))),
    );
  }
  if (erasure && (traceStore || logStore)) {
    routers.push(
      createErasureApi(erasure, traceStore, {
        tokensConfigured: security.adminTokens !== undefined,
        registry: metrics.registry,
        logger: logger.child({ component: 'erasure' }),
      }),
    );
  }
  const app = createAdminApp(metrics, components.recent, state, components.metricStores, routers, {
    ...toAdminOptions(config.admin, config.debug),
    logger,
    tokens: security.adminTokens,
  });
  const limits = toServerLimits(config.admin, 'admin');
  const server = await listen(app, config.admin.address, 'admin', security.adminTls, limits, metrics);
  return { address: boundAddress(server), close: (timeoutMs) => closeHttp(server, timeoutMs) };
}
