import Foundation
import GatewayStorage
import GatewaySupport
import LTICore

/// What `lti-gateway platforms …` does, separate from argument parsing so that tests can call it.
public enum PlatformAdministration {
    /// Validates and stores a new registration; returns it.
    public static func add(
        store: any RegistrationStore & SkyPrepAccountStore, issuer: String, clientID: String, authURL: String, tokenURL: String,
        jwksURL: String, deployments: [String], origin: String = "cli", now: Date = Date()
    ) async throws -> PlatformRegistration {
        guard !issuer.isEmpty, issuer.count <= 255 else { throw AdministrationError.invalid("issuer", "issuer must be 1…255 characters") }
        guard !clientID.isEmpty, clientID.count <= 255 else {
            throw AdministrationError.invalid("client_id", "client_id must be 1…255 characters")
        }
        try requireSecureURL(issuer, name: "issuer")
        let registration = PlatformRegistration(
            id: "plt_" + SecureRandom.token(byteCount: 9), issuer: issuer, clientID: clientID, authURL: authURL,
            tokenURL: tokenURL, jwksURL: jwksURL, deploymentIDs: try validDeployments(deployments), createdAt: now, origin: origin)
        try validateEndpoints(registration)
        do {
            try await store.addRegistration(registration)
        } catch let error as StorageError where error.code == .duplicate {
            throw AdministrationError(.conflict, "a platform with issuer \(issuer) and client id \(clientID) is already registered")
        }
        return registration
    }

    /// The registration's endpoints are https URLs (http only on loopback hosts).
    static func validateEndpoints(_ registration: PlatformRegistration) throws {
        for (name, url) in [("auth_url", registration.authURL), ("token_url", registration.tokenURL), ("jwks_url", registration.jwksURL)] {
            try requireSecureURL(url, name: name)
        }
    }

    /// One deployment at least (the LMS shows its id when the tool is installed), each 1…255 characters, each once.
    static func validDeployments(_ deployments: [String]) throws -> [String] {
        guard !deployments.isEmpty else {
            throw AdministrationError.invalid(
                "deployments", "at least one deployment is required (the LMS shows the deployment id when the tool is installed)")
        }
        guard deployments.count <= 1000 else { throw AdministrationError.invalid("deployments", "at most 1000 deployments") }
        for deployment in deployments where deployment.isEmpty || deployment.count > 255 {
            throw AdministrationError.invalid("deployments", "a deployment id must be 1…255 characters")
        }
        return deployments.uniqued()
    }

    /// https URLs only, except on loopback hosts (for local platforms and tests).
    static func requireSecureURL(_ url: String, name: String) throws {
        guard SecureURL.parse(url) == nil else { return }
        guard let components = URLComponents(string: url), components.scheme != nil, components.host?.isEmpty == false else {
            throw AdministrationError.invalid(name, "\(name) must be an absolute URL")
        }
        throw AdministrationError.invalid(name, "\(name) must use https (http only for localhost)")
    }

    /// Validates and stores a registration's launch options.
    public static func setLaunchOptions(
        store: any RegistrationStore & SkyPrepAccountStore, registrationID: String, options: PlatformLaunchOptions
    ) async throws {
        if let problem = options.problem { throw AdministrationError.invalid("options", problem) }
        guard try await store.setLaunchOptions(options, registrationID: registrationID) else {
            throw AdministrationError.notFound("no platform with id \(registrationID) (see platforms list)")
        }
    }

    /// Validates and stores a registration's SkyPrep options.
    public static func setSkyPrepOptions(
        store: any RegistrationStore & SkyPrepAccountStore, registrationID: String, options: PlatformSkyPrepOptions
    ) async throws {
        if let problem = options.problem { throw AdministrationError.invalid("skyprep", problem) }
        guard try await store.setSkyPrepOptions(options, registrationID: registrationID) else {
            throw AdministrationError.notFound("no platform with id \(registrationID) (see platforms list)")
        }
    }

    /// A table of registrations with their launch and SkyPrep options for `platforms list`.
    public static func table(_ registrations: [(PlatformRegistration, PlatformLaunchOptions, PlatformSkyPrepOptions)]) -> String {
        guard !registrations.isEmpty else { return "No platforms registered. Add one with: lti-gateway platforms add --help\n" }
        var out = ""
        for (r, o, s) in registrations {
            let made = "\(r.origin ?? "cli") on \(ISO8601DateFormatter().string(from: r.createdAt))"
            out += "\(r.id)\(r.approved ? "" : "  (waiting for approval: platforms approve \(r.id))")\n"
            out += "  issuer:      \(r.issuer)\n  client id:   \(r.clientID)\n  auth url:    \(r.authURL)\n  registered:  \(made)\n"
            if let scopes = r.grantedScopes { out += "  granted:     \(scopes.isEmpty ? "no service scopes" : scopes.joined(separator: " "))\n" }
            out += "  token url:   \(r.tokenURL)\n  jwks url:    \(r.jwksURL)\n  deployments: \(r.deploymentIDs.joined(separator: ", "))\n"
            out += "  launch:      \(describe(o))\n"
            out += "  skyprep:     \(describe(s))\n"
        }
        return out
    }

    /// One line of SkyPrep options, with the gateway-wide defaults named.
    public static func describe(_ s: PlatformSkyPrepOptions) -> String {
        func onOff(_ v: Bool) -> String { v ? "on" : "off" }
        let roles = s.roleMap.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        return "provisioning=\(onOff(s.provisioning)) account=\(s.account ?? "default") apiKeyVariable=\(s.apiKeyVariable ?? "SKYPREP_API_KEY") "
            + "groupSync=\(s.groupSync.map(onOff) ?? "default") linkByEmail=\(onOff(s.linkByEmail)) "
            + "noEmail=\(s.syntheticEmailDomain.map { "<learner id>@\($0)" } ?? "skip") roles=\(roles.isEmpty ? "all learner" : roles) "
            + "enrolOnSSO=\(onOff(s.enrolOnSSO))"
    }

    /// Queued background jobs for `jobs list`, one line each in aligned columns. For SkyPrep provisioning: the
    /// learner's platform and only the domain of the email the LMS shared (never the address: it is personal data).
    /// The age is the time since the job was first queued.
    public static func jobsTable(_ jobs: [QueuedJob], now: Date = Date()) -> String {
        guard !jobs.isEmpty else { return "No queued jobs.\n" }
        let rows = jobs.map { job in
            let learner =
                job.kind == SkyPrepProvisioningQueue.kind
                ? try? StoredJSON.decode(SkyPrepProvisioningRequest.self, from: job.payload, what: "the payload of job \(job.key)") : nil
            return [
                job.kind, job.key, learner?.registrationID ?? "-", learner?.emailDomain ?? "-",
                AdministrationTables.age(since: job.createdAt, now: now), job.held ? "held" : "waiting", String(job.attempts),
                job.held ? "-" : AdministrationTables.time(job.nextRunAt), (job.failureCode.map { "[\($0)] " } ?? "") + (job.lastError ?? "-"),
            ]
        }
        let table = AdministrationTables.columns(
            ["KIND", "KEY", "PLATFORM", "EMAIL DOMAIN", "AGE", "STATE", "ATTEMPTS", "NEXT RUN", "LAST ERROR"], rows)
        guard jobs.contains(where: \.held) else { return table }
        return table + "Held jobs wait for an operator: fix the cause, then run lti-gateway jobs retry <key>.\n"
    }

    /// Launch records, newest first, one line each: time, reference id, outcome, platform, learner, lab, lab instance.
    public static func launchesTable(_ launches: [LaunchRecord]) -> String {
        guard !launches.isEmpty else { return "No launches.\n" }
        let time = ISO8601DateFormatter()
        return launches.map { launch in
            "\(time.string(from: launch.createdAt))  \(launch.id)  \(launch.outcome)  registration=\(launch.registrationID) "
                + "learner=\(launch.learnerID) lab=\(launch.labID ?? "-") instance=\(launch.labInstanceID ?? "-")\n"
        }.joined()
    }

    /// One line of launch options, with Skillable's defaults named.
    public static func describe(_ o: PlatformLaunchOptions) -> String {
        func value<T>(_ v: T?) -> String { v.map { "\($0)" } ?? "default" }
        return "maxActiveLabs=\(value(o.maxActiveLabs)) maxSavedLabs=\(value(o.maxSavedLabs)) durationMinutes=\(value(o.durationMinutes)) "
            + "regionId=\(value(o.regionID)) lang=\(o.lang ?? "from locale") tag=\(o.sendTag ? "on" : "off") "
            + "contextVariables=\(o.sendContextVariables ? "on" : "off") platformStorage=\((o.platformStorage ?? .auto).rawValue) "
            + "storageFrame=\(o.storageFrame ?? "-") storageOrigin=\(o.storageOrigin ?? "auth endpoint's") "
            + "frameAncestors=\(o.frameAncestors?.joined(separator: ",") ?? "derived")"
    }
}

extension Array where Element: Hashable {
    /// The elements in order, each once.
    func uniqued() -> [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}
