import Metrics
import Prometheus

/// The process-wide Prometheus registry behind `/metrics` (swift-metrics can be bootstrapped once per process).
public enum GatewayMetrics {
    public static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }()
}
