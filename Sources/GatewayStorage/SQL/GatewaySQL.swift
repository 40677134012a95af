import Foundation
import LTICore

/// Every statement both SQL backends run, and the decoding of their rows: written once, sent in each backend's
/// placeholder form (``SQLStatement``). What differs between the backends — migrations, transactions, the job claim
/// (`SKIP LOCKED` in PostgreSQL) — stays in each backend.
public enum GatewaySQL {
    // MARK: registrations

    public static let insertRegistration = SQLStatement(
        """
        INSERT INTO platform_registrations (id, issuer, client_id, auth_url, token_url, jwks_url, created_at, origin, approved, granted_scopes)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """)

    public static func values(_ r: PlatformRegistration) -> [SQLValue] {
        [
            .text(r.id), .text(r.issuer), .text(r.clientID), .text(r.authURL), .text(r.tokenURL), .text(r.jwksURL), .time(r.createdAt),
            .text(r.origin), .bool(r.approved), .text(r.grantedScopes?.joined(separator: " ")),
        ]
    }

    public static let insertDeployment = SQLStatement(
        "INSERT INTO platform_deployments (registration_id, deployment_id, position) VALUES (?, ?, ?)")

    /// Registrations with their deployments, one row per deployment (or one with a NULL deployment), in order.
    static func registrations(where condition: String) -> SQLStatement {
        SQLStatement(
            """
            SELECT r.id, r.issuer, r.client_id, r.auth_url, r.token_url, r.jwks_url, r.created_at, r.origin, r.approved, r.granted_scopes, d.deployment_id
            FROM platform_registrations r LEFT JOIN platform_deployments d ON d.registration_id = r.id
            WHERE \(condition) ORDER BY r.created_at, r.id, d.position
            """)
    }
    static let allRegistrations = registrations(where: "1 = 1")
    /// What logins and launches look up: approved registrations only.
    static let registrationsByIssuer = registrations(where: "r.issuer = ? AND r.approved = ?")
    static let registrationByID = registrations(where: "r.id = ?")

    /// Folds the rows of ``registrations(where:)`` into registrations.
    static func registrations(_ rows: [some SQLRow]) throws -> [PlatformRegistration] {
        var result: [PlatformRegistration] = []
        for row in rows {
            let id = try row.requiredText("id")
            if result.last?.id != id {
                result.append(
                    PlatformRegistration(
                        id: id, issuer: try row.requiredText("issuer"), clientID: try row.requiredText("client_id"),
                        authURL: try row.requiredText("auth_url"), tokenURL: try row.requiredText("token_url"),
                        jwksURL: try row.requiredText("jwks_url"), deploymentIDs: [], createdAt: try row.date("created_at"),
                        origin: try row.text("origin"), approved: try row.bool("approved") ?? true,
                        grantedScopes: try row.text("granted_scopes").map { $0.split(separator: " ").map(String.init) }))
            }
            if let deployment = try row.text("deployment_id") { result[result.count - 1].deploymentIDs.append(deployment) }
        }
        return result
    }

    static let removeRegistration = SQLStatement("DELETE FROM platform_registrations WHERE id = ? RETURNING id")

    /// The JSON options columns of a registration.
    enum OptionsColumn: String {
        case launch = "launch_options"
        case skyPrep = "skyprep_options"

        var read: SQLStatement { self == .launch ? GatewaySQL.readLaunchOptions : GatewaySQL.readSkyPrepOptions }
        var write: SQLStatement { self == .launch ? GatewaySQL.writeLaunchOptions : GatewaySQL.writeSkyPrepOptions }
    }
    static let readLaunchOptions = SQLStatement("SELECT launch_options FROM platform_registrations WHERE id = ?")
    static let readSkyPrepOptions = SQLStatement("SELECT skyprep_options FROM platform_registrations WHERE id = ?")
    static let writeLaunchOptions = SQLStatement("UPDATE platform_registrations SET launch_options = ? WHERE id = ? RETURNING id")
    static let writeSkyPrepOptions = SQLStatement("UPDATE platform_registrations SET skyprep_options = ? WHERE id = ? RETURNING id")

    // MARK: login state

    static let loginStateColumns = """
        state, nonce, registration_id, target_link_uri, created_at, expires_at, login_hint, message_hint, deployment_hint,
        restart_key, storage_digest, storage_frame, new_window
        """
    static let saveLoginState = SQLStatement(
        "INSERT INTO login_states (\(loginStateColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
    /// Most logins: no restart key, no platform storage, not a new window (those columns keep their defaults). A
    /// shorter statement, because SQLite parses every statement it runs.
    static let savePlainLoginState = SQLStatement(
        """
        INSERT INTO login_states (state, nonce, registration_id, target_link_uri, created_at, expires_at, login_hint, message_hint,
          deployment_hint) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
        """)

    /// The statement that saves `s`, and its values.
    static func save(_ s: LoginState) -> (SQLStatement, [SQLValue]) {
        var values: [SQLValue] = [
            .text(s.state), .text(s.nonce), .text(s.registrationID), .text(s.targetLinkURI), .time(s.createdAt), .time(s.expiresAt),
            .text(s.loginHint), .text(s.ltiMessageHint), .text(s.deploymentHint),
        ]
        guard s.restartKey != nil || s.storageSecretDigest != nil || s.storageFrame != nil || s.startedInNewWindow else {
            return (savePlainLoginState, values)
        }
        values += [.text(s.restartKey), .text(s.storageSecretDigest), .text(s.storageFrame), .bool(s.startedInNewWindow)]
        return (saveLoginState, values)
    }

    /// One statement: of racing consumers (in any process), exactly one gets the row.
    static let consumeLoginState = SQLStatement("DELETE FROM login_states WHERE state = ? RETURNING \(loginStateColumns)")
    static let loginStateByState = SQLStatement("SELECT \(loginStateColumns) FROM login_states WHERE state = ? AND expires_at > ?")
    static let loginStateByRestartKey = SQLStatement(
        "SELECT \(loginStateColumns) FROM login_states WHERE restart_key = ? AND expires_at > ?")

    static func loginState(_ row: some SQLRow) throws -> LoginState {
        LoginState(
            state: try row.requiredText("state"), nonce: try row.requiredText("nonce"), registrationID: try row.requiredText("registration_id"),
            targetLinkURI: try row.requiredText("target_link_uri"), createdAt: try row.date("created_at"), expiresAt: try row.date("expires_at"),
            loginHint: try row.text("login_hint") ?? "", ltiMessageHint: try row.text("message_hint"),
            deploymentHint: try row.text("deployment_hint"), restartKey: try row.text("restart_key"),
            storageSecretDigest: try row.text("storage_digest"), storageFrame: try row.text("storage_frame"),
            startedInNewWindow: try row.bool("new_window") ?? false)
    }

    /// One statement: of racing assignments, the first key stays.
    static let assignRestartKey = SQLStatement(
        "UPDATE login_states SET restart_key = COALESCE(restart_key, ?) WHERE state = ? AND expires_at > ? RETURNING restart_key")

    static let readinessCheck = SQLStatement("UPDATE readiness_checks SET checked_at = ? WHERE id = 1 RETURNING id")

    /// Rows deleted by one statement of the clean-up: it runs in batches, so that neither a transaction nor the
    /// rows it reports grow with a flood of expired logins.
    static let expiredBatch = 1000
    static let deleteExpired = [
        ("login_states", "state"),
        // No longer written (a nonce is used up with its state); instances of the version before still write it during a
        // rolling upgrade, so its rows are cleaned up until a later release drops the table.
        ("used_nonces", "issuer, nonce"), ("deep_link_sessions", "id"), ("lab_sessions", "id"),
        ("lab_starts", "learner_id, lab_id"), ("webhook_events", "event, lab_instance_id"),
    ].map {
        table, key in
        SQLStatement(
            "DELETE FROM \(table) WHERE (\(key)) IN (SELECT \(key) FROM \(table) WHERE expires_at <= ? LIMIT \(expiredBatch)) RETURNING 1")
    }

    // MARK: deep-linking sessions

    static let deepLinkSessionColumns =
        "id, registration_id, deployment_id, return_url, data, accept_multiple, accept_lineitem, created_at, expires_at"
    static let saveDeepLinkSession = SQLStatement(
        "INSERT INTO deep_link_sessions (\(deepLinkSessionColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")

    static func values(_ s: DeepLinkSession) -> [SQLValue] {
        [
            .text(s.id), .text(s.registrationID), .text(s.deploymentID), .text(s.returnURL), .text(s.data), .bool(s.acceptMultiple),
            .bool(s.acceptLineItem), .time(s.createdAt), .time(s.expiresAt),
        ]
    }

    static let consumeDeepLinkSession = SQLStatement("DELETE FROM deep_link_sessions WHERE id = ? RETURNING \(deepLinkSessionColumns)")

    static func deepLinkSession(_ row: some SQLRow) throws -> DeepLinkSession {
        DeepLinkSession(
            id: try row.requiredText("id"), registrationID: try row.requiredText("registration_id"),
            deploymentID: try row.requiredText("deployment_id"), returnURL: try row.requiredText("return_url"), data: try row.text("data"),
            acceptMultiple: try row.bool("accept_multiple") ?? false, acceptLineItem: try row.bool("accept_lineitem") ?? false,
            createdAt: try row.date("created_at"), expiresAt: try row.date("expires_at"))
    }

    // MARK: lab sessions

    static let saveLabSession = SQLStatement("INSERT INTO lab_sessions (id, data, launch_used, expires_at) VALUES (?, ?, ?, ?)")
    static let labSession = SQLStatement("SELECT data, launch_used, expires_at FROM lab_sessions WHERE id = ?")
    static let useLabSessionLaunch = SQLStatement(
        "UPDATE lab_sessions SET launch_used = ? WHERE id = ? AND launch_used = ? AND expires_at > ? RETURNING data")

    static let releaseLabSessionLaunch = SQLStatement("UPDATE lab_sessions SET launch_used = ? WHERE id = ?")

    static func labSession(_ row: some SQLRow) throws -> StoredLabSession {
        StoredLabSession(
            data: try row.requiredText("data"), expiresAt: try row.date("expires_at"), launchUsed: try row.bool("launch_used") ?? false)
    }

    // MARK: lab starts

    /// Takes the row when nothing in force holds it (a claim or a shared outcome past its expiry counts as nothing), or
    /// when it is the caller's own unfinished claim (left by a start whose end could not be stored: its process runs
    /// one start per learner and lab at a time, so that one is over).
    static let claimLabStart = SQLStatement(
        """
        INSERT INTO lab_starts (learner_id, lab_id, holder, outcome, expires_at) VALUES (?, ?, ?, NULL, ?)
        ON CONFLICT (learner_id, lab_id) DO UPDATE SET holder = excluded.holder, outcome = NULL, expires_at = excluded.expires_at
          WHERE lab_starts.expires_at <= ? OR (lab_starts.holder = excluded.holder AND lab_starts.outcome IS NULL)
        RETURNING holder
        """)
    static let labStart = SQLStatement("SELECT holder, outcome, expires_at FROM lab_starts WHERE learner_id = ? AND lab_id = ?")
    static let shareLabStart = SQLStatement(
        "UPDATE lab_starts SET outcome = ?, expires_at = ? WHERE learner_id = ? AND lab_id = ? AND holder = ?")
    static let forgetLabStart = SQLStatement("DELETE FROM lab_starts WHERE learner_id = ? AND lab_id = ? AND outcome IS NOT NULL")
    static let releaseLabStart = SQLStatement("DELETE FROM lab_starts WHERE learner_id = ? AND lab_id = ? AND holder = ?")

    // MARK: identities

    static let identityColumns = "id, issuer, trust_anchor, subject, given_name, family_name, email, first_seen, last_seen"
    static let upsertIdentity = SQLStatement(
        """
        INSERT INTO learner_identities (\(identityColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (issuer, trust_anchor, subject) DO UPDATE SET
          given_name = excluded.given_name, family_name = excluded.family_name, email = excluded.email, last_seen = excluded.last_seen
        RETURNING \(identityColumns)
        """)

    static func values(_ i: LearnerIdentity) -> [SQLValue] {
        [
            .text(i.id), .text(i.issuer), .text(i.trustAnchor), .text(i.subject), .text(i.givenName), .text(i.familyName), .text(i.email),
            .time(i.firstSeen),
            .time(i.lastSeen),
        ]
    }

    static let identity = SQLStatement(
        "SELECT \(identityColumns) FROM learner_identities WHERE issuer = ? AND trust_anchor = ? AND subject = ?")

    static func identity(_ row: some SQLRow) throws -> LearnerIdentity {
        LearnerIdentity(
            id: try row.requiredText("id"), issuer: try row.requiredText("issuer"), trustAnchor: try row.requiredText("trust_anchor"),
            subject: try row.requiredText("subject"),
            givenName: try row.text("given_name"), familyName: try row.text("family_name"), email: try row.text("email"),
            firstSeen: try row.date("first_seen"), lastSeen: try row.date("last_seen"))
    }

    // MARK: launches

    static let launchColumns = """
        id, registration_id, deployment_id, learner_id, subject, message_type, resource_link_id, context_id, lab_id,
        outcome, vendor_result_code, lab_instance_id, ags_lineitem, ags_lineitems, ags_scopes, created_at, lab_state, completion_status, ended_at
        """
    static let recordLaunch = SQLStatement(
        "INSERT INTO launches (\(launchColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")

    static let completeLaunch = SQLStatement(
        "UPDATE launches SET outcome = ?, vendor_result_code = ?, lab_instance_id = ? WHERE id = ? RETURNING 1")

    static func outcomeValues(_ l: LaunchRecord) -> [SQLValue] {
        [.text(l.outcome), l.vendorResultCode.map(SQLValue.integer) ?? .null, .text(l.labInstanceID), .text(l.id)]
    }

    static func values(_ l: LaunchRecord) -> [SQLValue] {
        [
            .text(l.id), .text(l.registrationID), .text(l.deploymentID), .text(l.learnerID), .text(l.subject), .text(l.messageType),
            .text(l.resourceLinkID), .text(l.contextID), .text(l.labID), .text(l.outcome), l.vendorResultCode.map(SQLValue.integer) ?? .null,
            .text(l.labInstanceID), .text(l.agsLineItem), .text(l.agsLineItems), .text(l.agsScopes.joined(separator: " ")), .time(l.createdAt),
            .text(l.labState), l.completionStatus.map(SQLValue.integer) ?? .null, .time(l.endedAt),
        ]
    }

    static let launchByID = SQLStatement("SELECT \(launchColumns) FROM launches WHERE id = ?")
    static let recentLaunches = SQLStatement("SELECT \(launchColumns) FROM launches ORDER BY created_at DESC, id DESC LIMIT ?")

    static func launch(_ row: some SQLRow) throws -> LaunchRecord {
        LaunchRecord(
            id: try row.requiredText("id"), registrationID: try row.requiredText("registration_id"),
            deploymentID: try row.requiredText("deployment_id"), learnerID: try row.requiredText("learner_id"),
            subject: try row.requiredText("subject"), messageType: try row.requiredText("message_type"),
            resourceLinkID: try row.text("resource_link_id"), contextID: try row.text("context_id"), labID: try row.text("lab_id"),
            outcome: try row.requiredText("outcome"), vendorResultCode: try row.integer("vendor_result_code"),
            labInstanceID: try row.text("lab_instance_id"), agsLineItem: try row.text("ags_lineitem"), agsLineItems: try row.text("ags_lineitems"),
            agsScopes: (try row.text("ags_scopes") ?? "").split(separator: " ").map(String.init), createdAt: try row.date("created_at"),
            labState: try row.text("lab_state"), completionStatus: try row.integer("completion_status"),
            endedAt: try row.real("ended_at").map(Date.init(timeIntervalSince1970:)))
    }

    // MARK: SkyPrep accounts

    static let accountColumns = "learner_id, user_id, email, first_name, last_name, role, updated_at"
    static let accountByLearner = SQLStatement("SELECT \(accountColumns) FROM skyprep_accounts WHERE learner_id = ?")
    static let accountsByUser = SQLStatement("SELECT \(accountColumns) FROM skyprep_accounts WHERE user_id = ? ORDER BY learner_id")
    static let saveAccount = SQLStatement(
        """
        INSERT INTO skyprep_accounts (\(accountColumns)) VALUES (?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (learner_id) DO UPDATE SET user_id = excluded.user_id, email = excluded.email, first_name = excluded.first_name,
          last_name = excluded.last_name, role = excluded.role, updated_at = excluded.updated_at
        """)

    static func values(_ a: SkyPrepAccount) -> [SQLValue] {
        [.text(a.learnerID), .integer(a.userID), .text(a.email), .text(a.firstName), .text(a.lastName), .text(a.role), .time(a.updatedAt)]
    }

    static func account(_ row: some SQLRow) throws -> SkyPrepAccount {
        SkyPrepAccount(
            learnerID: try row.requiredText("learner_id"), userID: try row.requiredInteger("user_id"), email: try row.requiredText("email"),
            firstName: try row.requiredText("first_name"), lastName: try row.requiredText("last_name"), role: try row.requiredText("role"),
            updatedAt: try row.date("updated_at"))
    }

    // MARK: jobs

    public static let jobColumns = "kind, key, payload, revision, attempts, next_run_at, held, last_error, failure_code, created_at"
    /// Queued, or — when (kind, key) is queued — its payload replaced and revision bumped; due by the earlier time
    /// only when it has not run yet (a failed job keeps its backoff, a held one its hold).
    static let enqueueJob = SQLStatement(
        """
        INSERT INTO jobs (kind, key, payload, revision, attempts, next_run_at, held, created_at) VALUES (?, ?, ?, 1, 0, ?, ?, ?)
        ON CONFLICT (kind, key) DO UPDATE SET payload = excluded.payload, revision = jobs.revision + 1,
          next_run_at = CASE WHEN jobs.attempts = 0 AND excluded.next_run_at < jobs.next_run_at THEN excluded.next_run_at
                             ELSE jobs.next_run_at END
        """)
    static func values(_ job: JobToQueue) -> [SQLValue] {
        [.text(job.kind), .text(job.key), .text(job.payload), .time(job.runAt), .bool(false), .time(job.runAt)]
    }
    static let completeJob = SQLStatement("DELETE FROM jobs WHERE kind = ? AND key = ? AND revision = ? AND locked_by = ? RETURNING 1")
    static let renewJobLease = SQLStatement("UPDATE jobs SET locked_until = ? WHERE kind = ? AND key = ? AND locked_by = ? RETURNING 1")
    static let unlockJob = SQLStatement("UPDATE jobs SET locked_by = NULL, locked_until = NULL WHERE kind = ? AND key = ? AND locked_by = ?")
    /// A newer revision (enqueued meanwhile) keeps its own due time.
    static let retryJob = SQLStatement(
        """
        UPDATE jobs SET locked_by = NULL, locked_until = NULL, last_error = ?, failure_code = ?,
          next_run_at = CASE WHEN revision = ? THEN ? ELSE next_run_at END
        WHERE kind = ? AND key = ? AND locked_by = ?
        """)
    /// A newer revision (enqueued meanwhile) is not held: it runs again.
    static let holdJob = SQLStatement(
        """
        UPDATE jobs SET locked_by = NULL, locked_until = NULL, last_error = ?, failure_code = ?,
          held = CASE WHEN revision = ? THEN ? ELSE held END
        WHERE kind = ? AND key = ? AND locked_by = ?
        """)
    static let jobLease = SQLStatement("SELECT locked_until FROM jobs WHERE kind = ? AND key = ? AND locked_by IS NOT NULL")
    static let queuedJob = SQLStatement("SELECT \(jobColumns) FROM jobs WHERE kind = ? AND key = ?")
    static let queuedJobs = SQLStatement("SELECT \(jobColumns) FROM jobs ORDER BY created_at, kind, key LIMIT ?")
    /// An operator's retry: due now, with its attempts counted afresh (a job that used them all gets them all again).
    static let releaseJob = SQLStatement("UPDATE jobs SET held = ?, next_run_at = ?, attempts = 0 WHERE kind = ? AND key = ? RETURNING 1")

    public static func job(_ row: some SQLRow) throws -> QueuedJob {
        QueuedJob(
            kind: try row.requiredText("kind"), key: try row.requiredText("key"), payload: try row.requiredText("payload"),
            revision: try row.requiredInteger("revision"), attempts: try row.requiredInteger("attempts"), nextRunAt: try row.date("next_run_at"),
            lastError: try row.text("last_error"), failureCode: try row.text("failure_code"), held: try row.bool("held") ?? false,
            createdAt: try row.date("created_at"))
    }
}
