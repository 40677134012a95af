import AsyncHTTPClient
import Foundation
import GatewayStorage
import GatewayStoragePostgres
import GatewayStorageSQLite
import GatewaySupport
import Hummingbird
import HummingbirdCore
import LTICore
import Logging
import Metrics
import NIOCore
import PlatformServices
import Prometheus
import Sandbox
import ServiceLifecycle
import Skillable
import SkyPrep
import Synchronization
import UnixSignals

/// A built gateway: the application to run and the parts tests and commands look at.
public struct Gateway: Sendable {
    public let application: Application<RouterResponder<GatewayRequestContext>>
    public let store: any GatewayStore
    /// The built-in Skillable fake, when no Skillable URL is configured.
    public let skillableSandbox: SkillableSandbox?
    /// The built-in SkyPrep fake, when no SkyPrep URL is configured.
    public let skyPrepSandbox: SkyPrepSandbox?
    /// The port the server listens on, once it runs (useful with port 0).
    public let listeningPort: ListeningPort
    public let platformKeys: PlatformKeySetCache
    /// The tool's signing keys in use.
    public let toolKeys: ToolKeyService
    /// The client connections it holds, and their cap.
    public let connections: ConnectionCount
    /// The operations listener (`/metrics` and the admin API), when `GATEWAY_OPS_PORT` is set.
    public let operations: Application<RouterResponder<GatewayRequestContext>>?
    /// The port the operations listener listens on, once it runs.
    public let operationsPort: ListeningPort
    /// What operators change, for the command line and the admin API alike.
    public let administration: Administration
}

/// Opens the store named by `settings.database.url` (SQLite or PostgreSQL), runs its background work beside
/// `body` (applying migrations first unless `migrate` is false), and closes it when `body` ends, on every path.
public func withStore<T>(
    settings: GatewaySettings, logger: Logger, migrate: Bool = true, _ body: (any GatewayStore) async throws -> T
) async throws -> T {
    let store: any GatewayStore
    if let postgres = try settings.database.postgres {
        store = PostgresGatewayStore.open(settings: postgres, logger: logger)
        logger.info("database", metadata: ["db.url": "\(postgres.redactedURL)"])
    } else {
        store = try await SQLiteGatewayStore.open(path: settings.database.sqlitePath, logger: logger)
    }
    let result: T
    do {
        result = try await store.whileRunning {
            if migrate { try await store.migrate() }
            return try await body(store)
        }
    } catch {
        try? await store.close()
        throw error
    }
    try await store.close()
    return result
}

/// Runs the gateway until SIGTERM or SIGINT: opens the store, builds every part, serves, then stops the server,
/// the store's background work and the store, in that order.
///
/// On SIGTERM, requests in flight have `GATEWAY_SHUTDOWN_SECONDS` to finish; then the remaining connections are
/// closed (a stalled upload cannot hold the process). The open-file limit is raised as far as the system allows
/// first, since it bounds how many connections the gateway accepts.
public func runGateway(settings: GatewaySettings, logger: Logger) async throws {
    try settings.validate()
    OpenFileLimit.raise()
    try await withStore(settings: settings, logger: logger, migrate: settings.database.migrateOnStart) { store in
        let gateway = try await buildGateway(settings: settings, store: store, logger: logger)
        try await gateway.serviceGroup(settings: settings, logger: logger, gracefulShutdownSignals: [.sigterm, .sigint]).run()
    }
}

extension Gateway {
    /// The service group that serves this gateway: graceful shutdown (on `gracefulShutdownSignals`, or when
    /// triggered) lets requests in flight finish for `GATEWAY_SHUTDOWN_SECONDS`, then cancels what is left, which
    /// closes the remaining connections.
    public func serviceGroup(settings: GatewaySettings, logger: Logger, gracefulShutdownSignals: [UnixSignal]) -> ServiceGroup {
        var services: [any Service] = [application]
        if let operations { services.append(operations) }
        var configuration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: gracefulShutdownSignals, logger: logger)
        configuration.maximumGracefulShutdownDuration = settings.server.shutdownTimeout
        return ServiceGroup(configuration: configuration)
    }
}

/// Where the signing keys live: sealed in the shared PostgreSQL database, or as files in `GATEWAY_KEYS_DIR`.
public func signingKeyStore(settings: GatewaySettings, store: any GatewayStore) throws -> any SigningKeyStore {
    guard let postgres = store as? PostgresGatewayStore else { return FileSigningKeyStore(folder: settings.keys.directory) }
    guard let kek = settings.database.keyEncryptionKey.flatMap(KeyEncryptionKey.init(base64:)) else {
        throw SettingsError(message: "GATEWAY_KEY_ENCRYPTION_KEY must be set to 32 random bytes in base64 with a PostgreSQL database")
    }
    return PostgresSigningKeyStore(store: postgres, encryption: kek)
}

/// The composition root: builds every part of the gateway from its settings, on `store` (running, migrated:
/// see ``withStore(settings:logger:migrate:_:)``).
///
/// Used by `lti-gateway serve` (``runGateway(settings:logger:)``) and by the tests, so that both run the same application.
///
/// - Parameters:
///   - now: the time of day (token times, expiries).
///   - monotonicNow: the clock of every cache, window and deadline; never steps back with the time of day.
///     Tests pass one that moves with their `now`.
public func buildGateway(
    settings: GatewaySettings, store: any GatewayStore, logger: Logger, now: @escaping @Sendable () -> Date = { Date() },
    monotonicNow: @escaping @Sendable () -> ContinuousClock.Instant = { .now }
) async throws -> Gateway {
    try settings.validate()
    try settings.checkSandboxAllowed()
    let metrics = GatewayMetrics.registry
    let pages = try PageRenderer()
    let toolKeys: ToolKeyService
    let signingKeys = try signingKeyStore(settings: settings, store: store)
    do {
        toolKeys = try await ToolKeyService.start(store: signingKeys, policy: settings.keys.policy, now: now())
    } catch let error as StorageError {
        throw SettingsError(message: error.message)
    }
    let administration = Administration(
        store: store, signingKeys: signingKeys, keyPolicy: settings.keys.policy, logger: logger, now: now,
        keysChanged: { [toolKeys] in _ = try? await toolKeys.reloadIfChanged(now: now()) })
    let http = HTTPClient(
        eventLoopGroupProvider: .singleton,
        configuration: .init(
            redirectConfiguration: .disallow, timeout: .init(connect: .seconds(5), read: .seconds(30)),
            connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: settings.server.outboundConnectionsPerHost)))
    let listeningPort = ListeningPort()
    let loopback = loopbackHost(settings.server.host)

    // Skillable: the configured API, or the sandbox served by this same server.
    let sandbox: SkillableSandbox?
    let skillableSettings: SkillableClientSettings
    let skillableAuthority: String?
    let timeout = TimeAmount(settings.skillable.timeout)
    if let base = settings.skillable.baseURL, let key = settings.skillable.apiKey {
        sandbox = nil
        skillableSettings = SkillableClientSettings(baseURL: { base }, apiKey: key, timeout: timeout)
        skillableAuthority = URLAuthority(base)
    } else {
        let fake = SkillableSandbox(apiKey: SecureRandom.token())
        await fake.state.setLatency(settings.server.sandboxLatency)
        sandbox = fake
        skillableSettings = SkillableClientSettings(
            baseURL: { "http://\(loopback):\(listeningPort.value ?? settings.server.port)\(fake.prefix)/api/v3" }, apiKey: fake.apiKey,
            timeout: timeout)
        skillableAuthority = nil
    }
    let skillable = SkillableClient(http: http, settings: skillableSettings, logger: logger)

    // SkyPrep: the configured admin API, or the fake served by this same server.
    let skyPrepFake: SkyPrepSandbox?
    var skyPrepSettings: SkyPrepClientSettings
    if let base = settings.skyPrep.baseURL, let acct = settings.skyPrep.acctKey, let key = settings.skyPrep.apiKey {
        skyPrepFake = nil
        skyPrepSettings = SkyPrepClientSettings(baseURL: { base }, acctKey: acct, apiKey: key, callsPerMinute: settings.skyPrep.callsPerMinute)
    } else {
        let fake = SkyPrepSandbox(acctKey: "sandbox.skyprepapp.com", apiKey: SecureRandom.token())
        skyPrepFake = fake
        skyPrepSettings = SkyPrepClientSettings(
            baseURL: { "http://\(loopback):\(listeningPort.value ?? settings.server.port)\(fake.prefix)/admin/api" },
            acctKey: fake.acctKey, apiKey: fake.apiKey, callsPerMinute: settings.skyPrep.callsPerMinute)
    }
    skyPrepSettings.userLookup = settings.skyPrep.userLookup
    let skyPrep = SkyPrepClient(http: http, settings: skyPrepSettings, logger: logger)
    let registrations = RegistrationCache(store: store, ttl: settings.database.registrationCacheLifetime, now: monotonicNow)
    let skyPrepClients = SkyPrepAccountClients(
        defaultClient: skyPrep, defaultAcctKey: skyPrepSettings.acctKey,
        secret: { [secrets = settings.secrets] in try secrets.value($0) })
    let provisioning = SkyPrepProvisioningQueue(
        store: store, registrations: registrations, provisioner: SkyPrepProvisioner(store: store, clients: skyPrepClients, now: now), logger: logger,
        lease: settings.server.jobLease.totalSeconds,
        retry: Backoff(base: settings.skyPrep.retryDelay, cap: .seconds(3600), jitter: .proportional(0.2)))
    let platformKeys = PlatformKeySetCache(
        http: http, settings: .init(minRefetchInterval: settings.lti.jwksRefetchInterval), logger: logger,
        now: monotonicNow)

    let publicAuthority = URLAuthority(settings.baseURL) ?? "127.0.0.1:8080"
    let policy = LaunchPolicy(
        clockLeeway: settings.lti.clockSkew.totalSeconds, maxTokenBytes: settings.lti.maxTokenBytes,
        stateLifetime: settings.lti.stateLifetime.totalSeconds, redirectURI: settings.baseURL + "/lti/launch",
        toolHosts: [publicAuthority])
    // The built-in fakes answer on this server's loopback address, known once it listens.
    let loopbackAuthority: @Sendable () -> String? = { listeningPort.value.map { "\(loopback):\($0)" } }
    var exactAuthorities: Set<String> = [publicAuthority]
    if let skillableAuthority { exactAuthorities.insert(skillableAuthority) }
    let redirectPolicy = LabRedirectPolicy(
        exactAuthorities: exactAuthorities,
        hostSuffixes: settings.skillable.labHosts.map { $0.lowercased() },
        sandboxAuthority: sandbox == nil ? nil : loopbackAuthority)

    // SkyPrep sends learners to the customer's SkyPrep domain (its acct key) or a host of SKYPREP_LOGIN_HOSTS.
    // The configured SkyPrep API's own authority too (a stand-alone sandbox answers sign-in URLs there).
    let skyPrepAuthority = settings.skyPrep.baseURL.flatMap { URLAuthority($0) }
    let skyPrepRedirects = LabRedirectPolicy(
        exactAuthorities: Set([publicAuthority] + (skyPrepAuthority.map { [$0] } ?? [])),
        hostSuffixes: settings.skyPrep.loginHosts + (settings.skyPrep.acctKey.map { [$0.lowercased()] } ?? []),
        sandboxAuthority: skyPrepFake == nil ? nil : loopbackAuthority)
    let labSessionStore = LabSessions(store: store, lifetime: settings.skillable.labSessionLifetime.totalSeconds)
    let coordinator = LaunchCoordinator(
        skillable: skillable,
        policy: LaunchRetryPolicy(maxAttempts: settings.skillable.launchAttempts, deadline: settings.skillable.launchDeadline),
        deferredRule: settings.skillable.deferredLaunchRule, joinWindow: settings.skillable.launchJoinWindow, logger: logger,
        // Several instances share PostgreSQL, so a start is claimed there; one instance on SQLite needs only its own.
        claims: store is PostgresGatewayStore
            ? LabStartClaims(store: store, joinWindow: settings.skillable.launchJoinWindow, logger: logger, now: now) : nil,
        now: monotonicNow)
    let recorder = LaunchRecorder(store: store)
    // Grade passback: scores go through the durable outbox to the platforms' AGS endpoints.
    let scoreOutbox = ScoreOutbox(
        store: store, client: AGSClient(http: http, signer: { toolKeys.signer }, logger: logger, now: now), logger: logger,
        lease: settings.server.jobLease.totalSeconds,
        retry: Backoff(base: settings.lti.scoreRetry, cap: .seconds(3600), jitter: .proportional(0.2)), maxAttempts: settings.lti.scoreAttempts,
        now: now)
    let labChoices = LabChoices(skillable: skillable, sessions: labSessionStore, redirectPolicy: redirectPolicy)
    let catalog = LabCatalog(skillable: skillable, ttl: settings.skillable.catalogLifetime, logger: logger, now: monotonicNow)
    let launcher = LabLauncher(
        identities: store, skillable: skillable, coordinator: coordinator, redirectPolicy: redirectPolicy,
        choices: labChoices, recorder: recorder, provisioning: provisioning,
        launchOptions: { try await registrations.launchOptions(registrationID: $0) }, catalog: catalog)
    let responder = LaunchResponder(pages: pages, baseURL: settings.baseURL, labForms: FormTargets(policies: [redirectPolicy]))
    let labSessions = LabSessionController(
        choices: labChoices, launcher: launcher, registrations: registrations, responder: responder, now: now)
    let deepLinking = DeepLinkingController(
        picker: LabPicker(
            sessions: store, registrations: store,
            launchOptions: { [registrations] in try await registrations.launchOptions(registrationID: $0) },
            catalog: catalog,
            toolKeys: toolKeys, baseURL: settings.baseURL, sessionLifetime: settings.lti.pickerLifetime.totalSeconds,
            defaultScoreMaximum: settings.lti.defaultScoreMaximum),
        pages: pages, baseURL: settings.baseURL, now: now)
    let lti = LTIController(
        loginHandler: OIDCLoginHandler(registrations: registrations, states: store, policy: policy),
        validator: LaunchValidator(registrations: registrations, states: store, keys: platformKeys, policy: policy),
        bindings: LaunchBindingResolver(states: store), registrations: registrations,
        launcher: launcher,
        deepLinking: deepLinking,
        skyPrep: SkyPrepSSO(
            identities: store, accounts: store, recorder: recorder, registrations: registrations, clients: skyPrepClients,
            provisioning: provisioning, redirectPolicy: skyPrepRedirects, defaultGroupSync: settings.skyPrep.groupSync),
        responder: responder, launchForms: FormTargets(policies: [redirectPolicy, skyPrepRedirects]),
        pages: pages, baseURL: settings.baseURL, stateLifetime: settings.lti.stateLifetime.totalSeconds,
        launchBodyLimit: FormLimit.launch(maxTokenBytes: settings.lti.maxTokenBytes),
        ownOrigin: PlatformStorageTarget.origin(of: settings.baseURL), now: now)

    let router = Router(context: GatewayRequestContext.self)
    router.add(middleware: MetricsMiddleware())
    router.add(middleware: FrameAncestors.Middleware())
    router.add(middleware: GatewayErrorMiddleware(pages: pages))
    lti.addRoutes(to: router)
    deepLinking.addRoutes(to: router)
    labSessions.addRoutes(to: router)
    let operationsController = OperationsController(
        store: store, metrics: metrics, toolKeys: toolKeys,
        sandboxVendors: settings.sandboxVendors.map { $0 == "SKILLABLE_BASE_URL" ? "Skillable" : "SkyPrep" },
        metricsToken: settings.server.metricsToken)
    operationsController.addProbes(to: router)
    operationsController.addKeySet(to: router)
    let adminAPI =
        settings.server.adminAPI
        ? AdminAPIController(administration: administration, throttle: AuthFailureThrottle(now: monotonicNow), baseURL: settings.baseURL) : nil
    // Metrics and the admin API go on the operations listener when there is one, else on the main listener.
    let operationsRouter: Router<GatewayRequestContext>
    if settings.server.opsPort != nil {
        operationsRouter = Router(context: GatewayRequestContext.self)
        operationsRouter.add(middleware: MetricsMiddleware())
        operationsRouter.add(middleware: GatewayErrorMiddleware(pages: pages))
        operationsController.addProbes(to: operationsRouter)
    } else {
        operationsRouter = router
    }
    operationsController.addMetrics(to: operationsRouter)
    adminAPI?.addRoutes(to: operationsRouter)
    if !settings.sandboxVendors.isEmpty {
        logger.warning(
            "SANDBOX: the built-in fakes answer for \(settings.sandboxVendors.joined(separator: ", ")) unset; learners get fake labs — set them for a deployment"
        )
    }
    ToolConfigurationController(settings: settings, toolKeys: toolKeys).addRoutes(to: router)
    if let active = toolKeys.ring.active {
        RegistrationController(
            registration: DynamicRegistration(
                store: store,
                client: RegistrationClient(http: http, allowLocal: Loopback.isLoopback(URLComponents(string: settings.baseURL)?.host ?? "")),
                tool: ToolConfiguration(baseURL: settings.baseURL, activeKey: active), requireApproval: settings.lti.registrationApproval,
                now: now, audit: { action, target in await administration.audit(action, target, by: .anonymous) }),
            pages: pages
        ).addRoutes(to: router)
    }
    WebhookController(
        webhooks: SkillableWebhooks(store: store, outbox: scoreOutbox, now: now), secret: settings.skillable.webhookSecret
    ).addRoutes(to: router)
    sandbox?.addRoutes(to: router)
    skyPrepFake?.addRoutes(to: router)
    router.get("/") { _, _ in
        pages.messagePage(title: "LTI Gateway", message: "This is an LTI 1.3 tool. Launch it from your LMS course.")
    }

    let connections = ConnectionCount(cap: OpenFileLimit.connectionCap(requested: settings.server.maxConnections))
    if connections.cap < settings.server.maxConnections {
        logger.warning(
            "GATEWAY_MAX_CONNECTIONS lowered to what the open-file limit allows",
            metadata: ["gw.connections.max": "\(connections.cap)", "gw.open_file_limit": "\(OpenFileLimit.current.map(String.init) ?? "?")"])
    }
    let timeouts = ConnectionGuard.Timeouts(
        idle: TimeAmount(settings.server.idleTimeout), requestRead: TimeAmount(settings.server.requestReadTimeout))
    let application = Application(
        router: router,
        server: .http1(configuration: .init(additionalChannelHandlers: [ConnectionGuard(timeouts: timeouts, connections: connections)])),
        configuration: .init(
            address: .hostname(settings.server.host, port: settings.server.port), serverName: "lti-gateway",
            availableConnectionsDelegate: connections.delegate),
        services: [
            ClosingService(name: "http-client") { try await http.shutdown() },
            ExpiredStateCleaner(store: store, now: now, logger: logger).service(every: settings.server.cleanupInterval),
            JobWorkerService(poll: settings.server.jobPollInterval) { poll in await provisioning.work(poll: poll) },
            JobWorkerService(poll: settings.server.jobPollInterval) { poll in await scoreOutbox.work(poll: poll) },
            PeriodicService(interval: settings.server.jobPollInterval) { await scoreOutbox.publishDepth() },
            KeyRingReloader(keys: toolKeys, now: now, logger: logger).service(every: settings.keys.reloadInterval),
        ],
        onServerRunning: { channel in
            if let port = channel.localAddress?.port {
                listeningPort.set(port)
                // A public URL on this machine that names another port sends every login and link to the wrong place.
                if let publicURL = URLComponents(string: settings.baseURL), Loopback.isLoopback(publicURL.host ?? ""),
                    (publicURL.port ?? (publicURL.scheme == "https" ? 443 : 80)) != port
                {
                    logger.warning(
                        "GATEWAY_PUBLIC_URL names another port than the gateway listens on: logins and links will miss it",
                        metadata: ["gw.public_url": "\(settings.baseURL)", "gw.port": "\(port)"])
                }
            }
            logger.info(
                "lti-gateway listening",
                metadata: [
                    "gw.address": "\(settings.server.host):\(channel.localAddress?.port ?? settings.server.port)",
                    "gw.public_url": "\(settings.baseURL)",
                    "gw.skillable": "\(sandbox == nil ? "configured" : "sandbox")",
                ])
        },
        logger: logger)
    let operationsPort = ListeningPort()
    let operations = settings.server.opsPort.map { port in
        // Operators' scripts and a scraper: few connections.
        let operationsConnections = ConnectionCount(cap: 256)
        return Application(
            router: operationsRouter,
            server: .http1(
                configuration: .init(additionalChannelHandlers: [ConnectionGuard(timeouts: timeouts, connections: operationsConnections)])),
            configuration: .init(
                address: .hostname(settings.server.opsHost, port: port), serverName: "lti-gateway",
                availableConnectionsDelegate: operationsConnections.delegate),
            onServerRunning: { channel in
                if let port = channel.localAddress?.port { operationsPort.set(port) }
                logger.info(
                    "operations listener (metrics, admin API)",
                    metadata: ["gw.address": "\(settings.server.opsHost):\(channel.localAddress?.port ?? port)"])
            },
            logger: logger)
    }
    return Gateway(
        application: application, store: store, skillableSandbox: sandbox, skyPrepSandbox: skyPrepFake, listeningPort: listeningPort,
        platformKeys: platformKeys, toolKeys: toolKeys, connections: connections, operations: operations, operationsPort: operationsPort,
        administration: administration)
}

/// The address to reach a server listening on `host` from this machine.
func loopbackHost(_ host: String) -> String {
    switch host {
    case "0.0.0.0", "": return "127.0.0.1"
    case "::": return "[::1]"
    default: return host.contains(":") ? "[\(host)]" : host
    }
}
