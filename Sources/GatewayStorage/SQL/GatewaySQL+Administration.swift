import Foundation
import LTICore

extension GatewaySQL {
    // MARK: registration updates

    /// Endpoints only: the issuer and client id name the platform, and are never changed in place.
    public static let updateRegistrationEndpoints = SQLStatement(
        "UPDATE platform_registrations SET auth_url = ?, token_url = ?, jwks_url = ? WHERE id = ? RETURNING id")
    static let updateGrantedScopes = SQLStatement("UPDATE platform_registrations SET granted_scopes = ? WHERE id = ?")
    public static let deleteDeployments = SQLStatement("DELETE FROM platform_deployments WHERE registration_id = ?")

    /// The values of ``updateRegistrationEndpoints``.
    public static func endpointValues(_ r: PlatformRegistration) -> [SQLValue] {
        [.text(r.authURL), .text(r.tokenURL), .text(r.jwksURL), .text(r.id)]
    }

    static let addDeployment = SQLStatement(
        """
        INSERT INTO platform_deployments (registration_id, deployment_id, position)
        SELECT r.id, ?, (SELECT COALESCE(MAX(d.position), -1) + 1 FROM platform_deployments d WHERE d.registration_id = r.id)
        FROM platform_registrations r WHERE r.id = ? RETURNING deployment_id
        """)
    static let removeDeployment = SQLStatement(
        """
        DELETE FROM platform_deployments WHERE registration_id = ? AND deployment_id = ?
          AND (SELECT COUNT(*) FROM platform_deployments d WHERE d.registration_id = ?) > 1
        RETURNING deployment_id
        """)

    // MARK: launch queries

    /// The statement and values that select `query`'s launches: only the filters it sets appear, so every value bound
    /// has a type (PostgreSQL cannot type a NULL compared with nothing).
    static func launches(_ query: LaunchQuery) -> (SQLStatement, [SQLValue]) {
        var conditions: [String] = []
        var values: [SQLValue] = []
        for (column, value) in [
            ("registration_id", query.registrationID), ("learner_id", query.learnerID), ("lab_id", query.labID), ("outcome", query.outcome),
        ] {
            guard let value else { continue }
            conditions.append("\(column) = ?")
            values.append(.text(value))
        }
        if let from = query.createdFrom {
            conditions.append("created_at >= ?")
            values.append(.time(from))
        }
        if let before = query.createdBefore {
            conditions.append("created_at < ?")
            values.append(.time(before))
        }
        if let after = query.after {
            conditions.append("(created_at < ? OR (created_at = ? AND id < ?))")
            values += [.time(after.time), .time(after.time), .text(after.id)]
        }
        values.append(.integer(max(0, query.limit)))
        let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        return (SQLStatement("SELECT \(launchColumns) FROM launches \(filter) ORDER BY created_at DESC, id DESC LIMIT ?"), values)
    }

    // MARK: API keys

    static let apiKeyColumns = "id, name, scopes, prefix, secret_digest, created_by, created_at, expires_at, last_used_at"
    static let addAPIKey = SQLStatement("INSERT INTO api_keys (\(apiKeyColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
    static let apiKeyByDigest = SQLStatement("SELECT \(apiKeyColumns) FROM api_keys WHERE secret_digest = ?")
    static let apiKeyByID = SQLStatement("SELECT \(apiKeyColumns) FROM api_keys WHERE id = ?")
    static let allAPIKeys = SQLStatement("SELECT \(apiKeyColumns) FROM api_keys ORDER BY created_at, id")
    static let deleteAPIKey = SQLStatement("DELETE FROM api_keys WHERE id = ? RETURNING id")
    static let markAPIKeyUsed = SQLStatement(
        "UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)")

    static func values(_ k: StoredAPIKey) -> [SQLValue] {
        [
            .text(k.id), .text(k.name), .text(k.scopes.joined(separator: " ")), .text(k.prefix), .text(k.secretDigest), .text(k.createdBy),
            .time(k.createdAt), .time(k.expiresAt), .time(k.lastUsedAt),
        ]
    }

    static func apiKey(_ row: some SQLRow) throws -> StoredAPIKey {
        StoredAPIKey(
            id: try row.requiredText("id"), name: try row.requiredText("name"),
            scopes: try row.requiredText("scopes").split(separator: " ").map(String.init), prefix: try row.requiredText("prefix"),
            secretDigest: try row.requiredText("secret_digest"), createdBy: try row.requiredText("created_by"),
            createdAt: try row.date("created_at"), expiresAt: try row.real("expires_at").map(Date.init(timeIntervalSince1970:)),
            lastUsedAt: try row.real("last_used_at").map(Date.init(timeIntervalSince1970:)))
    }

    // MARK: audit events

    static let auditColumns = "id, actor, action, target, at"
    static let recordAuditEvent = SQLStatement("INSERT INTO audit_events (\(auditColumns)) VALUES (?, ?, ?, ?, ?)")
    static let auditEvents = SQLStatement("SELECT \(auditColumns) FROM audit_events ORDER BY at DESC, id DESC LIMIT ?")
    static let auditEventsAfter = SQLStatement(
        "SELECT \(auditColumns) FROM audit_events WHERE at < ? OR (at = ? AND id < ?) ORDER BY at DESC, id DESC LIMIT ?")

    static func values(_ e: AuditEvent) -> [SQLValue] {
        [.text(e.id), .text(e.actor), .text(e.action), .text(e.target), .time(e.at)]
    }

    static func auditEvent(_ row: some SQLRow) throws -> AuditEvent {
        AuditEvent(
            id: try row.requiredText("id"), actor: try row.requiredText("actor"), action: try row.requiredText("action"),
            target: try row.requiredText("target"), at: try row.date("at"))
    }
}

extension SQLGatewayStore {
    public func addDeployment(_ deploymentID: String, registrationID: String) async throws -> Bool {
        !(try await write(GatewaySQL.addDeployment, [.text(deploymentID), .text(registrationID)]).isEmpty)
    }

    public func removeDeployment(_ deploymentID: String, registrationID: String) async throws -> Bool {
        !(try await write(GatewaySQL.removeDeployment, [.text(registrationID), .text(deploymentID), .text(registrationID)]).isEmpty)
    }

    public func launches(matching query: LaunchQuery) async throws -> [LaunchRecord] {
        let (statement, values) = GatewaySQL.launches(query)
        return try await read(statement, values).map(GatewaySQL.launch)
    }

    // MARK: API keys

    public func addAPIKey(_ key: StoredAPIKey) async throws {
        try await write(GatewaySQL.addAPIKey, GatewaySQL.values(key))
    }

    public func apiKey(secretDigest: String) async throws -> StoredAPIKey? {
        try await read(GatewaySQL.apiKeyByDigest, [.text(secretDigest)]).first.map(GatewaySQL.apiKey)
    }

    public func apiKey(id: String) async throws -> StoredAPIKey? {
        try await read(GatewaySQL.apiKeyByID, [.text(id)]).first.map(GatewaySQL.apiKey)
    }

    public func apiKeys() async throws -> [StoredAPIKey] {
        try await read(GatewaySQL.allAPIKeys, []).map(GatewaySQL.apiKey)
    }

    public func deleteAPIKey(id: String) async throws -> Bool {
        !(try await write(GatewaySQL.deleteAPIKey, [.text(id)]).isEmpty)
    }

    public func markAPIKeyUsed(id: String, at: Date) async throws {
        try await write(GatewaySQL.markAPIKeyUsed, [.time(at), .text(id), .time(at)])
    }

    // MARK: audit events

    public func recordAuditEvent(_ event: AuditEvent) async throws {
        try await write(GatewaySQL.recordAuditEvent, GatewaySQL.values(event))
    }

    public func auditEvents(after: ListPosition?, limit: Int) async throws -> [AuditEvent] {
        let rows =
            if let after {
                try await read(GatewaySQL.auditEventsAfter, [.time(after.time), .time(after.time), .text(after.id), .integer(max(0, limit))])
            } else {
                try await read(GatewaySQL.auditEvents, [.integer(max(0, limit))])
            }
        return try rows.map(GatewaySQL.auditEvent)
    }
}

extension GatewaySQL {
    // MARK: grade passback

    static let launchByLabInstance = SQLStatement(
        "SELECT \(launchColumns) FROM launches WHERE lab_instance_id = ? ORDER BY created_at DESC, id DESC LIMIT 1")
    static let recordLabEvent = SQLStatement(
        """
        UPDATE launches SET lab_state = ?, completion_status = COALESCE(?, completion_status), ended_at = COALESCE(?, ended_at)
        WHERE id = ?
        """)
    static let webhookEventHandled = SQLStatement("SELECT 1 AS one FROM webhook_events WHERE event = ? AND lab_instance_id = ?")
    static let recordWebhookEvent = SQLStatement(
        "INSERT INTO webhook_events (event, lab_instance_id, received_at, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING")
    static let queuedJobsOfKind = SQLStatement("SELECT \(jobColumns) FROM jobs WHERE kind = ? ORDER BY created_at, key LIMIT ?")
    static let jobCounts = SQLStatement(
        "SELECT COUNT(*) FILTER (WHERE NOT held) AS waiting, COUNT(*) FILTER (WHERE held) AS held FROM jobs WHERE kind = ?")
}

extension SQLGatewayStore {
    public func launch(labInstanceID: String) async throws -> LaunchRecord? {
        try await read(GatewaySQL.launchByLabInstance, [.text(labInstanceID)]).first.map(GatewaySQL.launch)
    }

    public func recordLabEvent(launchID: String, state: String, completionStatus: Int?, endedAt: Date?) async throws {
        try await write(
            GatewaySQL.recordLabEvent, [.text(state), completionStatus.map(SQLValue.integer) ?? .null, .time(endedAt), .text(launchID)])
    }

    public func webhookEventHandled(event: String, labInstanceID: String) async throws -> Bool {
        !(try await read(GatewaySQL.webhookEventHandled, [.text(event), .text(labInstanceID)]).isEmpty)
    }

    public func recordWebhookEvent(event: String, labInstanceID: String, at: Date, expiresAt: Date) async throws {
        try await write(GatewaySQL.recordWebhookEvent, [.text(event), .text(labInstanceID), .time(at), .time(expiresAt)])
    }

    public func queuedJobs(kind: String, limit: Int) async throws -> [QueuedJob] {
        try await read(GatewaySQL.queuedJobsOfKind, [.text(kind), .integer(max(0, limit))]).map(GatewaySQL.job)
    }

    public func jobCounts(kind: String) async throws -> (waiting: Int, held: Int) {
        guard let row = try await read(GatewaySQL.jobCounts, [.text(kind)]).first else { return (0, 0) }
        return (try row.integer("waiting") ?? 0, try row.integer("held") ?? 0)
    }
}

extension GatewaySQL {
    // MARK: dynamic registration

    static let inviteColumns = "id, token_digest, note, created_by, created_at, expires_at, used_at, registration_id"
    static let addInvite = SQLStatement("INSERT INTO registration_invites (\(inviteColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
    static let inviteByDigest = SQLStatement("SELECT \(inviteColumns) FROM registration_invites WHERE token_digest = ?")
    static let allInvites = SQLStatement("SELECT \(inviteColumns) FROM registration_invites ORDER BY created_at DESC, id DESC")
    /// One statement: of racing registrations through one invitation, one uses it.
    public static let useInvite = SQLStatement(
        "UPDATE registration_invites SET used_at = ?, registration_id = ? WHERE token_digest = ? AND used_at IS NULL AND expires_at > ? RETURNING id")
    public static let registrationIDByClient = SQLStatement("SELECT id, origin FROM platform_registrations WHERE issuer = ? AND client_id = ?")
    static let countInviteAttempt = SQLStatement(
        """
        UPDATE registration_invites SET attempts = attempts + 1
        WHERE token_digest = ? AND used_at IS NULL AND expires_at > ? AND attempts < ? RETURNING id
        """)
    public static let addDeploymentIfMissing = SQLStatement(
        """
        INSERT INTO platform_deployments (registration_id, deployment_id, position)
        SELECT ?, ?, (SELECT COALESCE(MAX(d.position), -1) + 1 FROM platform_deployments d WHERE d.registration_id = ?) WHERE true
        ON CONFLICT DO NOTHING
        """)
    static let approveRegistration = SQLStatement("UPDATE platform_registrations SET approved = ? WHERE id = ? RETURNING id")

    /// The statements of ``RegistrationInviteStore/completeDynamicRegistration(_:inviteDigest:now:)``, run by `run` inside
    /// the backend's transaction.
    public static func completeDynamicRegistration<Row: SQLRow>(
        _ r: PlatformRegistration, inviteDigest: String, now: Date, run: (SQLStatement, [SQLValue]) async throws -> [Row]
    ) async throws -> DynamicRegistrationResult {
        let found = try await run(registrationIDByClient, [.text(r.issuer), .text(r.clientID)]).first
        let existing = try found.map { try $0.requiredText("id") }
        if let existing, try found?.text("origin") != "dynamic" { return .registeredByHand(existing) }
        let id = existing ?? r.id
        guard !(try await run(useInvite, [.time(now), .text(id), .text(inviteDigest), .time(now)])).isEmpty else { return .inviteUnusable }
        if let existing {
            var updated = r
            updated.id = existing
            _ = try await run(updateRegistrationEndpoints, endpointValues(updated))
            _ = try await run(updateGrantedScopes, [.text(r.grantedScopes?.joined(separator: " ")), .text(existing)])
            if !r.approved { _ = try await run(approveRegistration, [.bool(false), .text(existing)]) }
            for deployment in r.deploymentIDs { _ = try await run(addDeploymentIfMissing, [.text(existing), .text(deployment), .text(existing)]) }
            return .updated(existing)
        }
        _ = try await run(insertRegistration, values(r))
        for (position, deployment) in r.deploymentIDs.enumerated() {
            _ = try await run(insertDeployment, [.text(r.id), .text(deployment), .integer(position)])
        }
        return .created(r.id)
    }

    static func values(_ i: RegistrationInvite) -> [SQLValue] {
        [
            .text(i.id), .text(i.tokenDigest), .text(i.note), .text(i.createdBy), .time(i.createdAt), .time(i.expiresAt), .time(i.usedAt),
            .text(i.registrationID),
        ]
    }

    static func invite(_ row: some SQLRow) throws -> RegistrationInvite {
        RegistrationInvite(
            id: try row.requiredText("id"), tokenDigest: try row.requiredText("token_digest"), note: try row.text("note"),
            createdBy: try row.requiredText("created_by"), createdAt: try row.date("created_at"), expiresAt: try row.date("expires_at"),
            usedAt: try row.real("used_at").map(Date.init(timeIntervalSince1970:)), registrationID: try row.text("registration_id"))
    }
}

extension SQLGatewayStore {
    public func addInvite(_ invite: RegistrationInvite) async throws {
        try await write(GatewaySQL.addInvite, GatewaySQL.values(invite))
    }

    public func invite(tokenDigest: String) async throws -> RegistrationInvite? {
        try await read(GatewaySQL.inviteByDigest, [.text(tokenDigest)]).first.map(GatewaySQL.invite)
    }

    public func invites() async throws -> [RegistrationInvite] {
        try await read(GatewaySQL.allInvites, []).map(GatewaySQL.invite)
    }

    public func countInviteAttempt(tokenDigest: String, now: Date, limit: Int) async throws -> Bool {
        !(try await write(GatewaySQL.countInviteAttempt, [.text(tokenDigest), .time(now), .integer(limit)]).isEmpty)
    }

    public func approveRegistration(id: String) async throws -> Bool {
        !(try await write(GatewaySQL.approveRegistration, [.bool(true), .text(id)]).isEmpty)
    }
}
