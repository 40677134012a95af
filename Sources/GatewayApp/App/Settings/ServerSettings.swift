import Foundation

/// Where the gateway listens, how it names itself, and how its background work is paced.
public struct ServerSettings: SettingsArea {
    /// The external base URL used in every URL the gateway hands out.
    public var publicURL = "http://127.0.0.1:8080"
    /// Listen address; port 0 picks a free port.
    public var host = "127.0.0.1"
    public var port = 8080
    /// `trace` … `critical`.
    public var logLevel = "info"
    /// Connections kept per vendor or platform host.
    public var outboundConnectionsPerHost = 256
    /// Delay of every answer of the built-in sandbox.
    public var sandboxLatency = Duration.zero
    /// Time between clean-ups of expired state.
    public var cleanupInterval = Duration.seconds(60)
    /// How often background workers look for due jobs queued by any instance.
    public var jobPollInterval = Duration.seconds(5)
    /// How long a background job is reserved for the instance running it (renewed every third of it while it runs).
    public var jobLease = Duration.seconds(30)
    /// How long a connection may wait for a request's head (after it opens, or after the previous answer) before it is closed.
    public var idleTimeout = Duration.seconds(30)
    /// How long a request's body may take to arrive after its head.
    public var requestReadTimeout = Duration.seconds(30)
    /// Most client connections open at once (capped further by the open-file limit).
    public var maxConnections = 4000
    /// Threads that read and write the network (`lti-gateway serve`): half the cores, at least one; the Swift runtime's
    /// threads (one per core) run the handlers. With a loop per core as well, twice as many threads as cores contend for
    /// them, and each hand-over between a loop and a handler is more often a switch of threads.
    public var eventLoops = ServerSettings.defaultEventLoops
    /// Half the cores, at least one.
    public static var defaultEventLoops: Int { max(1, ProcessInfo.processInfo.activeProcessorCount / 2) }
    /// How long SIGTERM waits for requests in flight before the remaining connections are closed.
    public var shutdownTimeout = Duration.seconds(10)
    /// Whether the built-in fakes may stand in for unset vendors although the public URL is another machine's
    /// (`serve --sandbox`: a demo on a network). Never with an https public URL.
    public var sandboxRequested = false
    /// The bearer token `/metrics` requires; without one, `/metrics` is not served.
    public var metricsToken: String?
    /// A second listener for `/metrics` and the admin API, apart from learners' traffic; nil: both on the main listener.
    public var opsPort: Int?
    /// The second listener's address.
    public var opsHost = "127.0.0.1"
    /// Whether the admin API (`/api/v1`) is served at all.
    public var adminAPI = true

    public init() {}

    public static let settings: [Setting<Self>] = [
        .text(
            "GATEWAY_PUBLIC_URL", \.publicURL, "external base URL used in every URL the gateway hands out",
            reason: { value in
                guard let url = URLComponents(string: value), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil,
                    url.path.isEmpty || url.path == "/"
                else { return "must be an absolute http(s) URL without a path, e.g. https://lti.example.edu" }
                return nil
            }),
        .text("GATEWAY_HOST", \.host, "listen address"),
        .integer("GATEWAY_PORT", \.port, "listen port (0 picks a free one)", allowed: 0...65535),
        .parsed(
            "GATEWAY_LOG_LEVEL", \.logLevel, "`trace` … `critical`", rule: "trace, debug, info, notice, warning, error or critical",
            parse: { ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains($0) ? $0 : nil }, format: { $0 }),
        .integer(
            "GATEWAY_OUTBOUND_CONNECTIONS", \.outboundConnectionsPerHost,
            "connections kept per vendor or platform host (too few makes launches queue behind a slow vendor)", allowed: 1...4096),
        .duration(
            "GATEWAY_SANDBOX_LATENCY_MS", \.sandboxLatency,
            "delay of every answer of the built-in Skillable fake (to stand in for a real vendor)", unit: .milliseconds, range: 0...10_000),
        .duration(
            "GATEWAY_CLEANUP_INTERVAL_SECONDS", \.cleanupInterval, "how often expired state and nonces are deleted",
            range: 0.05...86_400),
        .duration(
            "GATEWAY_JOB_POLL_SECONDS", \.jobPollInterval, "how often each instance looks for due background jobs", range: 0.05...600),
        .duration(
            "GATEWAY_JOB_LEASE_SECONDS", \.jobLease,
            "how long a background job is reserved for the instance running it; renewed every third of it while the job runs, so the jobs of an instance that died are due again within it",
            range: 0.3...3600),
        .duration(
            "GATEWAY_IDLE_TIMEOUT_SECONDS", \.idleTimeout,
            "a connection that sends no complete request head for this long (after it opens, or after the previous answer) is closed",
            range: 0.1...3600),
        .duration(
            "GATEWAY_REQUEST_READ_SECONDS", \.requestReadTimeout,
            "a request whose body has not fully arrived this long after its head is refused (408) and its connection closed",
            range: 0.1...3600),
        .integer(
            "GATEWAY_MAX_CONNECTIONS", \.maxConnections,
            "most client connections open at once; further clients wait in the listen queue (never more than the open-file limit allows, less 256 kept for the database, vendors and logs)",
            allowed: 16...1_000_000),
        .integer(
            "GATEWAY_EVENT_LOOPS", \.eventLoops,
            "threads that read and write the network (clients, vendors, PostgreSQL); the handlers run on one thread per core besides",
            allowed: 1...256),
        .duration(
            "GATEWAY_SHUTDOWN_SECONDS", \.shutdownTimeout,
            "on SIGTERM, how long requests in flight may finish before the remaining connections are closed", range: 0...600),
        .secret(
            "GATEWAY_METRICS_TOKEN", \.metricsToken,
            "the bearer token `GET /metrics` requires (`Authorization: Bearer …`); unset, `/metrics` is not served"),
        .parsed(
            "GATEWAY_OPS_PORT", \.opsPort,
            "a second listener for `/metrics` and the admin API (`/api/v1`), which the learner-facing listener then does not serve (0 picks a free port)",
            rule: "a port number 0…65535",
            parse: { text in
                guard let port = Int(text.trimmingCharacters(in: .whitespaces)), (0...65535).contains(port) else { return nil }
                return .some(port)
            }, format: { $0.map(String.init) ?? "none" }),
        .text("GATEWAY_OPS_HOST", \.opsHost, "the second listener's address (keep it on a private network)"),
        .flag("GATEWAY_ADMIN_API", \.adminAPI, "serve the admin API (`/api/v1`); `false` turns it off everywhere"),
    ]

    /// The normalised public base URL (no trailing slash).
    public var baseURL: String { publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL }
}
