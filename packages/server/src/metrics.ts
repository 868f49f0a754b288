import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The process's Prometheus metrics, in one registry owned by whoever starts Kumo (no globals). */
export class Metrics {
  readonly registry = new Registry();
  readonly httpRequests = new Counter({
    name: 'kumo_http_requests_total',
    help: 'HTTP requests by method, route and status code.',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: 'kumo_http_request_duration_seconds',
    help: 'HTTP request latency by method and route.',
    labelNames: ['method', 'route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: 'kumo_workqueue_depth',
    help: 'Keys waiting in a controller work queue.',
    labelNames: ['controller'] as const,
    registers: [this.registry],
  });
  readonly reconciles = new Counter({
    name: 'kumo_reconcile_total',
    help: 'Reconciles by controller and result (success, requeue, error, terminal).',
    labelNames: ['controller', 'result'] as const,
    registers: [this.registry],
  });
  readonly reconcileDuration = new Histogram({
    name: 'kumo_reconcile_duration_seconds',
    help: 'Reconcile latency by controller.',
    labelNames: ['controller'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
    registers: [this.registry],
  });
  readonly outboxPublished = new Counter({
    name: 'kumo_outbox_published_total',
    help: 'Outbox rows published to the bus.',
    registers: [this.registry],
  });

  /** 1 while the bus takes messages, 0 while a networked bus reconnects (read at every scrape). */
  readonly busConnected = new Gauge({
    name: 'kumo_bus_connected',
    help: 'Whether the message bus (NATS, or the in-process bus) takes messages: 1 yes, 0 reconnecting.',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'kumo_' });
  }
}
