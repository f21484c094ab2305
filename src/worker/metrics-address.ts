/** Where `mirrors run` serves /metrics and /healthz unless told otherwise (no prom-client import: the CLI's help reads it). */

/**
 * 9187 (the README's old example) is postgres_exporter's, which often runs on the same host. Prometheus's
 * default port allocations (its wiki) fill 9100-9999 and now continue above 10000; its exporter guide
 * recommends ports outside that range for exporters not registered there. 15187 is outside it, below
 * Linux's ephemeral range (32768-60999, where a listener can collide with outgoing connections), and not
 * a port any common service or exporter uses. See docs/metrics.md.
 */
export const DEFAULT_METRICS_PORT = 15187;
/** Loopback by default: the metrics and health endpoints carry no authentication. */
export const DEFAULT_METRICS_HOST = '127.0.0.1';
