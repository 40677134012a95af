import Foundation
import GatewayStorage
import Hummingbird
import LTICore

/// The admin API's objects as JSON: snake_case names, times in ISO 8601 UTC.
enum AdminJSON {
    static func platform(_ p: Administration.Platform) -> JSONValue {
        let r = p.registration
        return .object([
            ("id", .string(r.id)), ("issuer", .string(r.issuer)), ("client_id", .string(r.clientID)), ("auth_url", .string(r.authURL)),
            ("token_url", .string(r.tokenURL)), ("jwks_url", .string(r.jwksURL)), ("deployments", deployments(r)),
            ("options", options(p.options)), ("skyprep", skyPrep(p.skyPrep)), ("created_at", .time(r.createdAt)),
            ("origin", .string(r.origin ?? "cli")), ("approved", .bool(r.approved)), ("granted_scopes", strings(r.grantedScopes)),
        ])
    }

    static func deployments(_ r: PlatformRegistration) -> JSONValue {
        .array(r.deploymentIDs.map { .object([("deployment_id", .string($0))]) })
    }

    static func options(_ o: PlatformLaunchOptions) -> JSONValue {
        .object([
            ("max_active_labs", .integer(o.maxActiveLabs)), ("max_saved_labs", .integer(o.maxSavedLabs)),
            ("duration_minutes", .integer(o.durationMinutes)), ("region_id", .integer(o.regionID)), ("lang", .string(o.lang)),
            ("send_tag", .bool(o.sendTag)), ("send_context_variables", .bool(o.sendContextVariables)),
            ("platform_storage", .string((o.platformStorage ?? .auto).rawValue)), ("storage_frame", .string(o.storageFrame)),
            ("storage_origin", .string(o.storageOrigin)), ("picker_roles", strings(o.pickerRoles)), ("frame_ancestors", strings(o.frameAncestors)),
        ])
    }

    static func skyPrep(_ s: PlatformSkyPrepOptions) -> JSONValue {
        .object([
            ("provisioning", .bool(s.provisioning)), ("account", .string(s.account)), ("api_key_variable", .string(s.apiKeyVariable)),
            ("group_sync", s.groupSync.map(JSONValue.bool) ?? .null), ("link_by_email", .bool(s.linkByEmail)),
            ("synthetic_email_domain", .string(s.syntheticEmailDomain)),
            ("role_map", .object(s.roleMap.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })),
            ("enrol_on_sso", .bool(s.enrolOnSSO)), ("allowed_course_ids", strings(s.allowedCourseIDs)), ("group_prefix", .string(s.groupPrefix)),
        ])
    }

    static func strings(_ values: [String]?) -> JSONValue { values.map { .array($0.map(JSONValue.string)) } ?? .null }

    static func signingKey(_ key: ToolKey) -> JSONValue {
        .object([
            ("kid", .string(key.kid)), ("state", .string(key.state.rawValue)), ("created_at", .time(key.createdAt)),
            ("activated_at", .time(key.activatedAt)), ("retires_at", .time(key.retiresAt)),
        ])
    }

    static func apiKey(_ k: StoredAPIKey, secret: String? = nil) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("id", .string(k.id)), ("name", .string(k.name)), ("scopes", .array(k.scopes.map(JSONValue.string))), ("prefix", .string(k.prefix)),
            ("created_by", .string(k.createdBy)), ("created_at", .time(k.createdAt)), ("expires_at", .time(k.expiresAt)),
            ("last_used_at", .time(k.lastUsedAt)),
        ]
        if let secret { members.append(("secret", .string(secret))) }
        return .object(members)
    }

    static func launch(_ l: LaunchRecord) -> JSONValue {
        .object([
            ("id", .string(l.id)), ("platform_id", .string(l.registrationID)), ("deployment_id", .string(l.deploymentID)),
            ("learner_id", .string(l.learnerID)), ("lab_id", .string(l.labID)), ("outcome", .string(l.outcome)),
            ("vendor_result_code", .integer(l.vendorResultCode)), ("lab_instance_id", .string(l.labInstanceID)),
            ("message_type", .string(l.messageType)), ("context_id", .string(l.contextID)), ("resource_link_id", .string(l.resourceLinkID)),
            ("created_at", .time(l.createdAt)), ("lab_state", .string(l.labState)), ("completion_status", .integer(l.completionStatus)),
            ("ended_at", .time(l.endedAt)), ("gradebook", .bool(l.agsLineItem != nil || l.agsLineItems != nil)),
        ])
    }

    static func invite(_ i: RegistrationInvite, link: String? = nil) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("id", .string(i.id)), ("note", .string(i.note)), ("created_by", .string(i.createdBy)), ("created_at", .time(i.createdAt)),
            ("expires_at", .time(i.expiresAt)), ("used_at", .time(i.usedAt)), ("platform_id", .string(i.registrationID)),
        ]
        if let link { members.append(("url", .string(link))) }
        return .object(members)
    }

    static func delivery(_ d: Administration.OutboxDelivery) -> JSONValue {
        .object([
            ("id", .string(d.id)), ("launch_id", .string(d.launchID)), ("state", .string(d.state)), ("attempts", .integer(d.attempts)),
            ("last_error", .string(d.lastError)), ("next_attempt_at", .time(d.nextAttemptAt)),
        ])
    }

    static func auditEvent(_ e: AuditEvent) -> JSONValue {
        .object([
            ("id", .string(e.id)), ("actor", .string(e.actor)), ("action", .string(e.action)), ("target", .string(e.target)), ("at", .time(e.at)),
        ])
    }

    /// `{"data": […], "next_cursor": …}`.
    static func list(_ items: [JSONValue], nextCursor: String?) -> JSONValue {
        .object([("data", .array(items)), ("next_cursor", .string(nextCursor))])
    }
}

/// A page position as the API hands it out: opaque to clients (base64url of the last row's time and id).
enum ListCursor {
    static func encode(_ position: ListPosition) -> String {
        Base64URL.encode(Array("\(position.time.timeIntervalSince1970)|\(position.id)".utf8))
    }

    static func decode(_ text: String) throws -> ListPosition {
        let invalid = GatewayError.invalidRequest("cursor is not a cursor this API handed out", param: "cursor")
        guard text.count <= 512, let bytes = Base64URL.decode(Array(text.utf8)), let decoded = String(validating: bytes, as: UTF8.self) else {
            throw invalid
        }
        let parts = decoded.split(separator: "|", maxSplits: 1).map(String.init)
        guard parts.count == 2, let seconds = Double(parts[0]), seconds.isFinite, !parts[1].isEmpty else { throw invalid }
        return ListPosition(time: Date(timeIntervalSince1970: seconds), id: parts[1])
    }
}

/// A JSON value as a request sent it: booleans apart from numbers (`true` is never 1).
enum JSONInput: Decodable, Sendable {
    case string(String)
    case number(Double)
    case bool(Bool)
    case null
    case array([JSONInput])
    case object([String: JSONInput])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONInput].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONInput].self))
        }
    }
}

/// A request's JSON object body, read field by field; each mistake names its field.
struct AdminRequestBody {
    /// Bodies larger than this are refused (413).
    static let limit = 64 * 1024
    let fields: [String: JSONInput]
    /// The prefix of the fields' names in messages (`options.` for a nested object).
    let path: String

    init(fields: [String: JSONInput], path: String = "") {
        self.fields = fields
        self.path = path
    }

    /// Reads the request's body as one JSON object (an empty body is an empty object).
    static func read(_ request: Request) async throws -> AdminRequestBody {
        let text = try await FormParameters.body(of: request, limit: limit)
        if text.allSatisfy(\.isWhitespace) { return AdminRequestBody(fields: [:]) }
        guard case .object(let object) = try? JSONDecoder().decode(JSONInput.self, from: Data(text.utf8)) else {
            throw GatewayError.invalidRequest("the body must be a JSON object", param: "body")
        }
        return AdminRequestBody(fields: object)
    }

    func invalid(_ name: String, _ message: String) -> GatewayError {
        .invalidRequest("\(path)\(name) \(message)", param: path + name)
    }

    /// Refuses fields this endpoint does not know (a misspelt field is a mistake, never silently ignored).
    func onlyKnown(_ names: Set<String>) throws {
        if let unknown = fields.keys.sorted().first(where: { !names.contains($0) }) {
            throw GatewayError.invalidRequest(
                "\(path)\(unknown.prefix(64)) is not a field here; the fields are \(names.sorted().joined(separator: ", "))",
                param: path + String(unknown.prefix(64)))
        }
    }

    func has(_ name: String) -> Bool { fields[name] != nil }

    /// The field's value; nil when it is absent or null.
    private func value(_ name: String) -> JSONInput? {
        guard let value = fields[name] else { return nil }
        if case .null = value { return nil }
        return value
    }

    func string(_ name: String) throws -> String? {
        guard let value = value(name) else { return nil }
        guard case .string(let text) = value else { throw invalid(name, "must be a string") }
        return text
    }

    func requiredString(_ name: String) throws -> String {
        guard let text = try string(name) else { throw invalid(name, "is required") }
        return text
    }

    func bool(_ name: String) throws -> Bool? {
        guard let value = value(name) else { return nil }
        guard case .bool(let truth) = value else { throw invalid(name, "must be true or false") }
        return truth
    }

    func integer(_ name: String) throws -> Int? {
        guard let value = value(name) else { return nil }
        guard case .number(let number) = value, let integer = Int(exactly: number) else { throw invalid(name, "must be a whole number") }
        return integer
    }

    func strings(_ name: String) throws -> [String]? {
        guard let value = value(name) else { return nil }
        guard case .array(let items) = value, items.count <= 1000 else { throw invalid(name, "must be a list of strings") }
        return try items.map { item in
            guard case .string(let text) = item else { throw invalid(name, "must be a list of strings") }
            return text
        }
    }

    func object(_ name: String) throws -> AdminRequestBody? {
        guard let value = value(name) else { return nil }
        guard case .object(let object) = value else { throw invalid(name, "must be an object") }
        return AdminRequestBody(fields: object, path: "\(path)\(name).")
    }

    /// An ISO 8601 time (`2027-01-31T00:00:00Z`).
    func time(_ name: String) throws -> Date? {
        guard let text = try string(name) else { return nil }
        guard let date = ISO8601Time.parse(text) else { throw invalid(name, "must be an ISO 8601 date-time such as 2027-01-31T00:00:00Z") }
        return date
    }

    /// Launch options; fields left out take their defaults (the options are replaced whole).
    func launchOptions() throws -> PlatformLaunchOptions {
        try onlyKnown([
            "max_active_labs", "max_saved_labs", "duration_minutes", "region_id", "lang", "send_tag", "send_context_variables",
            "platform_storage", "storage_frame", "storage_origin", "picker_roles", "frame_ancestors",
        ])
        var storage: PlatformStorageMode?
        if let text = try string("platform_storage") {
            guard let mode = PlatformStorageMode(rawValue: text) else { throw invalid("platform_storage", "must be auto, on or off") }
            storage = mode
        }
        return PlatformLaunchOptions(
            maxActiveLabs: try integer("max_active_labs"), maxSavedLabs: try integer("max_saved_labs"),
            durationMinutes: try integer("duration_minutes"), regionID: try integer("region_id"), lang: try string("lang"),
            sendTag: try bool("send_tag") ?? true, sendContextVariables: try bool("send_context_variables") ?? false, platformStorage: storage,
            storageFrame: try string("storage_frame"), storageOrigin: try string("storage_origin"), pickerRoles: try strings("picker_roles"),
            frameAncestors: try strings("frame_ancestors"))
    }

    /// SkyPrep options; fields left out take their defaults (the options are replaced whole).
    func skyPrepOptions() throws -> PlatformSkyPrepOptions {
        try onlyKnown([
            "provisioning", "account", "api_key_variable", "group_sync", "link_by_email", "synthetic_email_domain", "role_map", "enrol_on_sso",
            "allowed_course_ids", "group_prefix",
        ])
        var roleMap: [String: String] = [:]
        if let roles = try object("role_map") {
            guard roles.fields.count <= 100 else { throw invalid("role_map", "must map at most 100 roles") }
            for name in roles.fields.keys { roleMap[name] = try roles.requiredString(name) }
        }
        return PlatformSkyPrepOptions(
            provisioning: try bool("provisioning") ?? true, account: try string("account"), apiKeyVariable: try string("api_key_variable"),
            groupSync: try bool("group_sync"), linkByEmail: try bool("link_by_email") ?? false,
            syntheticEmailDomain: try string("synthetic_email_domain"), roleMap: roleMap, enrolOnSSO: try bool("enrol_on_sso") ?? true,
            allowedCourseIDs: try strings("allowed_course_ids"), groupPrefix: try string("group_prefix"))
    }
}

/// ISO 8601 date-times as the API and the command line take them: with a time zone, seconds optional fractions.
public enum ISO8601Time {
    public static func parse(_ text: String) -> Date? {
        guard text.count <= 64 else { return nil }
        return (try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text))
            ?? (try? Date.ISO8601FormatStyle().parse(text))
    }
}
