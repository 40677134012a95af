/// The admin API's OpenAPI 3.1 description, served at `/api/v1/openapi.json`. Written here apart from the routes,
/// as a reader sees the API; a test holds each to the other (every route documented with its scope, every
/// documented operation served).
enum AdminAPIDescription {
    /// One documented operation.
    struct Operation {
        let method: String
        let path: String
        let summary: String
        let scope: String?
        var parameters: [JSONValue] = []
        var requestSchema: String?
        /// Status and the schema of its body (nil: no body).
        let success: (Int, JSONValue?)
    }

    static func ref(_ name: String) -> JSONValue { .object([("$ref", .string("#/components/schemas/\(name)"))]) }
    static func listOf(_ name: String) -> JSONValue {
        .object([
            ("type", .string("object")), ("required", .array([.string("data"), .string("next_cursor")])),
            (
                "properties",
                .object([
                    ("data", .object([("type", .string("array")), ("items", ref(name))])),
                    ("next_cursor", .object([("type", .array([.string("string"), .string("null")]))])),
                ])
            ),
        ])
    }
    static func pathParameter(_ name: String, _ description: String) -> JSONValue {
        .object([
            ("name", .string(name)), ("in", .string("path")), ("required", .bool(true)), ("description", .string(description)),
            ("schema", .object([("type", .string("string"))])),
        ])
    }
    static func queryParameter(_ name: String, _ description: String, type: String = "string", format: String? = nil) -> JSONValue {
        var schema: [(String, JSONValue)] = [("type", .string(type))]
        if let format { schema.append(("format", .string(format))) }
        if name == "limit" { schema += [("minimum", .integer(1)), ("maximum", .integer(100)), ("default", .integer(25))] }
        return .object([("name", .string(name)), ("in", .string("query")), ("description", .string(description)), ("schema", .object(schema))])
    }
    static let paging = [
        queryParameter("limit", "Rows per page (1–100).", type: "integer"),
        queryParameter("cursor", "The `next_cursor` of the previous page."),
    ]

    static let operations: [Operation] = {
        let p = AdminAPIController.prefix
        let id = pathParameter("id", "The object's id.")
        return [
            Operation(
                method: "get", path: "\(p)/openapi.json", summary: "This description.", scope: nil,
                success: (200, .object([("type", .string("object"))]))),
            Operation(method: "get", path: "\(p)/platforms", summary: "List platforms.", scope: "platforms.read", success: (200, listOf("Platform"))),
            Operation(
                method: "post", path: "\(p)/platforms", summary: "Register a platform.", scope: "platforms.write", requestSchema: "PlatformInput",
                success: (201, ref("Platform"))),
            Operation(
                method: "get", path: "\(p)/platforms/{id}", summary: "Get a platform.", scope: "platforms.read", parameters: [id],
                success: (200, ref("Platform"))),
            Operation(
                method: "patch", path: "\(p)/platforms/{id}",
                summary: "Change a platform's endpoints, deployments or options (issuer and client id stay).",
                scope: "platforms.write", parameters: [id], requestSchema: "PlatformChanges", success: (200, ref("Platform"))),
            Operation(
                method: "delete", path: "\(p)/platforms/{id}", summary: "Remove a platform (its launch records stay).", scope: "platforms.write",
                parameters: [id], success: (204, nil)),
            Operation(
                method: "post", path: "\(p)/platforms/{id}/approve", summary: "Accept the launches of a platform registered dynamically.",
                scope: "platforms.write", parameters: [id], success: (200, ref("Platform"))),
            Operation(
                method: "get", path: "\(p)/registration_invites", summary: "List registration invitations (never their links).",
                scope: "platforms.read", success: (200, listOf("RegistrationInvite"))),
            Operation(
                method: "post", path: "\(p)/registration_invites",
                summary:
                    "Create a one-time registration link for an LMS administrator (LTI Dynamic Registration); the answer is the only one with its url.",
                scope: "platforms.write", requestSchema: "RegistrationInviteInput", success: (201, ref("RegistrationInvite"))),
            Operation(
                method: "get", path: "\(p)/platforms/{id}/deployments", summary: "List a platform's deployments.", scope: "platforms.read",
                parameters: [id], success: (200, listOf("Deployment"))),
            Operation(
                method: "post", path: "\(p)/platforms/{id}/deployments", summary: "Add a deployment.", scope: "platforms.write", parameters: [id],
                requestSchema: "Deployment", success: (201, ref("Deployment"))),
            Operation(
                method: "delete", path: "\(p)/platforms/{id}/deployments/{deployment_id}", summary: "Remove a deployment (a platform keeps one).",
                scope: "platforms.write", parameters: [id, pathParameter("deployment_id", "The deployment id, percent-encoded.")],
                success: (204, nil)),
            Operation(
                method: "get", path: "\(p)/signing_keys", summary: "List the published signing keys.", scope: "signing_keys.read",
                success: (200, listOf("SigningKey"))),
            Operation(
                method: "post", path: "\(p)/signing_keys/rotate", summary: "Rotate: next becomes active, active retiring, a new next.",
                scope: "signing_keys.write", requestSchema: "Rotation", success: (200, listOf("SigningKey"))),
            Operation(
                method: "delete", path: "\(p)/signing_keys/{kid}", summary: "Retire a retiring key at once (compromise).",
                scope: "signing_keys.write",
                parameters: [pathParameter("kid", "The key's kid.")], success: (204, nil)),
            Operation(
                method: "get", path: "\(p)/api_keys", summary: "List API keys (never their secrets).", scope: "api_keys.read",
                success: (200, listOf("APIKey"))),
            Operation(
                method: "post", path: "\(p)/api_keys", summary: "Create an API key; the answer is the only one that shows its secret.",
                scope: "api_keys.write", requestSchema: "APIKeyInput", success: (201, ref("APIKeyCreated"))),
            Operation(
                method: "get", path: "\(p)/api_keys/{id}", summary: "Get an API key.", scope: "api_keys.read", parameters: [id],
                success: (200, ref("APIKey"))),
            Operation(
                method: "delete", path: "\(p)/api_keys/{id}", summary: "Delete an API key; it fails from the next request on.",
                scope: "api_keys.write",
                parameters: [id], success: (204, nil)),
            Operation(
                method: "get", path: "\(p)/launches", summary: "List launches, newest first.", scope: "launches.read",
                parameters: [
                    queryParameter("platform_id", "Only this platform's launches."), queryParameter("learner_id", "Only this learner's."),
                    queryParameter("lab_id", "Only this lab's."), queryParameter("outcome", "Only this outcome (launched, pending, …)."),
                    queryParameter("created_after", "At or after this time.", format: "date-time"),
                    queryParameter("created_before", "Before this time.", format: "date-time"),
                ] + paging, success: (200, listOf("Launch"))),
            Operation(
                method: "get", path: "\(p)/launches/{id}", summary: "Get a launch.", scope: "launches.read", parameters: [id],
                success: (200, ref("Launch"))),
            Operation(
                method: "get", path: "\(p)/outbox", summary: "Score deliveries waiting or failed, oldest first.", scope: "outbox.read",
                parameters: [queryParameter("limit", "Most deliveries listed (1–100).", type: "integer")], success: (200, listOf("OutboxDelivery"))),
            Operation(
                method: "post", path: "\(p)/outbox/{id}/retry", summary: "Deliver a failed (or waiting) score now.", scope: "outbox.write",
                parameters: [id], success: (200, ref("OutboxDelivery"))),
            Operation(
                method: "get", path: "\(p)/audit_events", summary: "Who changed what, newest first.", scope: "audit.read", parameters: paging,
                success: (200, listOf("AuditEvent"))),
        ]
    }()

    static func object(_ properties: [(String, String)], required: [String] = [], nullable: Set<String> = []) -> JSONValue {
        .object([
            ("type", .string("object")),
            ("required", .array(required.map(JSONValue.string))),
            (
                "properties",
                .object(
                    properties.map { name, type in
                        if type.hasSuffix("[]") {
                            let item = String(type.dropLast(2))
                            return (
                                name,
                                .object([
                                    ("type", .string("array")),
                                    ("items", item.hasPrefix("#") ? ref(String(item.dropFirst())) : .object([("type", .string(item))])),
                                ])
                            )
                        }
                        let parts = type.split(separator: ":").map(String.init)
                        var schema: [(String, JSONValue)] = [
                            ("type", nullable.contains(name) ? .array([.string(parts[0]), .string("null")]) : .string(parts[0]))
                        ]
                        if parts.count > 1 { schema.append(("format", .string(parts[1]))) }
                        return (name, .object(schema))
                    })
            ),
        ])
    }

    static let schemas: [(String, JSONValue)] = [
        (
            "Error",
            object(
                [("error", "#ErrorDetail")], required: ["error"])
        ),
        ("ErrorDetail", object([("type", "string"), ("message", "string"), ("param", "string")], required: ["type", "message"])),
        ("Deployment", object([("deployment_id", "string")], required: ["deployment_id"])),
        (
            "LaunchOptions",
            object(
                [
                    ("max_active_labs", "integer"), ("max_saved_labs", "integer"), ("duration_minutes", "integer"), ("region_id", "integer"),
                    ("lang", "string"), ("send_tag", "boolean"), ("send_context_variables", "boolean"), ("platform_storage", "string"),
                    ("storage_frame", "string"), ("storage_origin", "string"), ("picker_roles", "string[]"), ("frame_ancestors", "string[]"),
                ], nullable: ["max_active_labs", "max_saved_labs", "duration_minutes", "region_id", "lang", "storage_frame", "storage_origin"])
        ),
        (
            "SkyPrepOptions",
            object(
                [
                    ("provisioning", "boolean"), ("account", "string"), ("api_key_variable", "string"), ("group_sync", "boolean"),
                    ("link_by_email", "boolean"), ("synthetic_email_domain", "string"), ("role_map", "object"), ("enrol_on_sso", "boolean"),
                    ("allowed_course_ids", "string[]"), ("group_prefix", "string"),
                ], nullable: ["account", "api_key_variable", "group_sync", "synthetic_email_domain", "group_prefix"])
        ),
        (
            "Platform",
            object(
                [
                    ("id", "string"), ("issuer", "string"), ("client_id", "string"), ("auth_url", "string"), ("token_url", "string"),
                    ("jwks_url", "string"), ("deployments", "#Deployment[]"), ("options", "#LaunchOptions"), ("skyprep", "#SkyPrepOptions"),
                    ("created_at", "string:date-time"), ("origin", "string"), ("approved", "boolean"), ("granted_scopes", "string[]"),
                ], required: ["id", "issuer", "client_id", "auth_url", "token_url", "jwks_url", "deployments", "options", "skyprep", "created_at"])
        ),
        (
            "PlatformInput",
            object(
                [
                    ("issuer", "string"), ("client_id", "string"), ("auth_url", "string"), ("token_url", "string"), ("jwks_url", "string"),
                    ("deployments", "#Deployment[]"), ("options", "#LaunchOptions"), ("skyprep", "#SkyPrepOptions"),
                ], required: ["issuer", "client_id", "auth_url", "token_url", "jwks_url", "deployments"])
        ),
        (
            "PlatformChanges",
            object([
                ("auth_url", "string"), ("token_url", "string"), ("jwks_url", "string"), ("deployments", "#Deployment[]"),
                ("options", "#LaunchOptions"), ("skyprep", "#SkyPrepOptions"),
            ])
        ),
        (
            "SigningKey",
            object(
                [
                    ("kid", "string"), ("state", "string"), ("created_at", "string:date-time"), ("activated_at", "string:date-time"),
                    ("retires_at", "string:date-time"),
                ], required: ["kid", "state", "created_at"], nullable: ["activated_at", "retires_at"])
        ),
        ("Rotation", object([("force", "boolean"), ("emergency", "boolean")])),
        (
            "APIKey",
            object(
                [
                    ("id", "string"), ("name", "string"), ("scopes", "string[]"), ("prefix", "string"), ("created_by", "string"),
                    ("created_at", "string:date-time"), ("expires_at", "string:date-time"), ("last_used_at", "string:date-time"),
                ], required: ["id", "name", "scopes", "prefix", "created_at"], nullable: ["expires_at", "last_used_at"])
        ),
        (
            "APIKeyCreated",
            object(
                [
                    ("id", "string"), ("name", "string"), ("scopes", "string[]"), ("prefix", "string"), ("created_by", "string"),
                    ("created_at", "string:date-time"), ("expires_at", "string:date-time"), ("last_used_at", "string:date-time"),
                    ("secret", "string"),
                ], required: ["id", "name", "scopes", "prefix", "created_at", "secret"], nullable: ["expires_at", "last_used_at"])
        ),
        (
            "APIKeyInput",
            object(
                [("name", "string"), ("scopes", "string[]"), ("expires_at", "string:date-time"), ("environment", "string")],
                required: ["name", "scopes"])
        ),
        (
            "Launch",
            object(
                [
                    ("id", "string"), ("platform_id", "string"), ("deployment_id", "string"), ("learner_id", "string"), ("lab_id", "string"),
                    ("outcome", "string"), ("vendor_result_code", "integer"), ("lab_instance_id", "string"), ("message_type", "string"),
                    ("context_id", "string"), ("resource_link_id", "string"), ("created_at", "string:date-time"), ("lab_state", "string"),
                    ("completion_status", "integer"), ("ended_at", "string:date-time"), ("gradebook", "boolean"),
                ], required: ["id", "platform_id", "deployment_id", "learner_id", "outcome", "created_at"],
                nullable: [
                    "lab_id", "vendor_result_code", "lab_instance_id", "context_id", "resource_link_id", "lab_state", "completion_status", "ended_at",
                ])
        ),
        (
            "RegistrationInvite",
            object(
                [
                    ("id", "string"), ("note", "string"), ("created_by", "string"), ("created_at", "string:date-time"),
                    ("expires_at", "string:date-time"), ("used_at", "string:date-time"), ("platform_id", "string"), ("url", "string"),
                ], required: ["id", "created_by", "created_at", "expires_at"], nullable: ["note", "used_at", "platform_id"])
        ),
        ("RegistrationInviteInput", object([("expires_in_seconds", "integer"), ("note", "string")])),
        (
            "OutboxDelivery",
            object(
                [
                    ("id", "string"), ("launch_id", "string"), ("state", "string"), ("attempts", "integer"), ("last_error", "string"),
                    ("next_attempt_at", "string:date-time"),
                ], required: ["id", "state", "attempts"], nullable: ["launch_id", "last_error", "next_attempt_at"])
        ),
        (
            "AuditEvent",
            object(
                [("id", "string"), ("actor", "string"), ("action", "string"), ("target", "string"), ("at", "string:date-time")],
                required: ["id", "actor", "action", "target", "at"])
        ),
    ]

    static func errorResponse(_ description: String) -> JSONValue {
        .object([
            ("description", .string(description)),
            ("content", .object([("application/json", .object([("schema", ref("Error"))]))])),
        ])
    }

    /// The document; its server is relative (`/`), since the API answers on whichever listener serves it.
    static func document() -> JSONValue {
        var paths: [(String, [(String, JSONValue)])] = []
        for operation in operations {
            var members: [(String, JSONValue)] = [("summary", .string(operation.summary))]
            if !operation.parameters.isEmpty { members.append(("parameters", .array(operation.parameters))) }
            if let schema = operation.requestSchema {
                members.append(
                    (
                        "requestBody",
                        .object([
                            ("required", .bool(operation.method != "post" || !operation.path.hasSuffix("/rotate"))),
                            ("content", .object([("application/json", .object([("schema", ref(schema))]))])),
                        ])
                    ))
            }
            var responses: [(String, JSONValue)] = []
            let (status, body) = operation.success
            if let body {
                responses.append(
                    (
                        String(status),
                        .object([("description", .string("Success.")), ("content", .object([("application/json", .object([("schema", body)]))]))])
                    ))
            } else {
                responses.append((String(status), .object([("description", .string("Done."))])))
            }
            if let scope = operation.scope {
                members.append(("security", .array([.object([("apiKey", .array([.string(scope)]))])])))
                responses += [
                    ("400", errorResponse("A parameter is missing or wrong (`param` names it).")),
                    ("401", errorResponse("Invalid or missing API key.")), ("403", errorResponse("This API key does not have the required scope.")),
                    ("429", errorResponse("Too many failed authentications from this address.")),
                ]
                if operation.path.contains("{") { responses.append(("404", errorResponse("No object with this id."))) }
                if operation.method != "get" {
                    responses.append(
                        ("409", errorResponse("The change contradicts what is stored (a duplicate, a rotation too early, the last deployment).")))
                }
            } else {
                members.append(("security", .array([])))
            }
            members.append(("responses", .object(responses)))
            if let index = paths.firstIndex(where: { $0.0 == operation.path }) {
                paths[index].1.append((operation.method, .object(members)))
            } else {
                paths.append((operation.path, [(operation.method, .object(members))]))
            }
        }
        return .object([
            ("openapi", .string("3.1.0")),
            (
                "info",
                .object([
                    ("title", .string("LTI Gateway admin API")), ("version", .string("1")),
                    (
                        "description",
                        .string(
                            "Platforms, signing keys, API keys, launches and the audit trail. Authenticate with `Authorization: Bearer sk_live_…`; each operation names the scope it needs."
                        )
                    ),
                ])
            ),
            ("servers", .array([.object([("url", .string("/"))])])),
            ("paths", .object(paths.map { ($0.0, .object($0.1)) })),
            (
                "components",
                .object([
                    ("schemas", .object(schemas)),
                    (
                        "securitySchemes",
                        .object([
                            (
                                "apiKey",
                                .object([
                                    ("type", .string("http")), ("scheme", .string("bearer")), ("description", .string("sk_live_… or sk_test_…")),
                                ])
                            )
                        ])
                    ),
                ])
            ),
        ])
    }
}
