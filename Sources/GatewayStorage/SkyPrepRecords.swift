import Foundation
import LTICore

/// The SkyPrep user a learner identity was provisioned as, remembered so that later launches make no lookup.
public struct SkyPrepAccount: Sendable, Equatable {
    /// The gateway's opaque learner id (``LearnerIdentity/id``).
    public var learnerID: String
    /// SkyPrep's user id.
    public var userID: Int
    public var email: String
    public var firstName: String
    public var lastName: String
    /// learner, admin, manager or content_manager.
    public var role: String
    public var updatedAt: Date

    public init(learnerID: String, userID: Int, email: String, firstName: String, lastName: String, role: String, updatedAt: Date) {
        self.learnerID = learnerID
        self.userID = userID
        self.email = email
        self.firstName = firstName
        self.lastName = lastName
        self.role = role
        self.updatedAt = updatedAt
    }
}

/// How the learners of one platform registration are provisioned in SkyPrep (SPEC "Launch" step 4, "SSO
/// into SkyPrep"). Every field has a safe default, so a registration without settings is provisioned
/// with the gateway-wide SkyPrep account, as learners, never linked by a shared email.
public struct PlatformSkyPrepOptions: Sendable, Equatable, Codable {
    /// The SkyPrep roles `create_user` and `update_user` accept.
    public static let roles: Set<String> = ["learner", "admin", "manager", "content_manager"]

    /// Create and update these learners' SkyPrep users on launches.
    public var provisioning: Bool
    /// The SkyPrep account (`acct_key`, the customer's SkyPrep domain); nil → SKYPREP_ACCT_KEY.
    public var account: String?
    /// The name of the environment variable that holds this account's API key (never the key itself);
    /// nil → SKYPREP_API_KEY.
    public var apiKeyVariable: String?
    /// Put learners in a SkyPrep group named after the LMS course; nil → SKYPREP_GROUP_SYNC.
    public var groupSync: Bool?
    /// Link a new identity to an existing SkyPrep user with the same email. Off by default: two LMS
    /// identities that share an email are never merged unless an operator says so.
    public var linkByEmail: Bool
    /// For learners whose LMS shares no email: provision them as `<learner id>@<domain>`; nil → skip
    /// provisioning (their labs still launch).
    public var syntheticEmailDomain: String?
    /// LTI role (full URI or its short name, e.g. `Instructor`) → SkyPrep role; unmapped → learner.
    public var roleMap: [String: String]
    /// Enrol the learner in the SkyPrep course of an SSO launch (`skyprep_course_id`).
    public var enrolOnSSO: Bool
    /// The SkyPrep course ids a link may enrol learners in (whoever edits an LMS link sets `skyprep_course_id`);
    /// nil or empty → none: a link naming a course is refused.
    public var allowedCourseIDs: [String]?
    /// What the names of groups made from LMS course titles start with (nil → ``defaultGroupPrefix``), so that group
    /// sync never joins a group an administrator made (say "Managers") because a course was titled so.
    public var groupPrefix: String?

    /// The group-name prefix when a platform sets none.
    public static let defaultGroupPrefix = "LMS: "

    public init(
        provisioning: Bool = true, account: String? = nil, apiKeyVariable: String? = nil, groupSync: Bool? = nil,
        linkByEmail: Bool = false, syntheticEmailDomain: String? = nil, roleMap: [String: String] = [:], enrolOnSSO: Bool = true,
        allowedCourseIDs: [String]? = nil, groupPrefix: String? = nil
    ) {
        self.provisioning = provisioning
        self.account = account
        self.apiKeyVariable = apiKeyVariable
        self.groupSync = groupSync
        self.linkByEmail = linkByEmail
        self.syntheticEmailDomain = syntheticEmailDomain
        self.roleMap = roleMap
        self.enrolOnSSO = enrolOnSSO
        self.allowedCourseIDs = allowedCourseIDs
        self.groupPrefix = groupPrefix
    }

    /// Whether `name` may hold a platform's SkyPrep API key: `SKYPREP_API_KEY` or `SKYPREP_API_KEY_<NAME>` only, so that
    /// no option can make the gateway send another secret (the key-encryption key, the database password) to SkyPrep.
    public static func isAPIKeyVariable(_ name: String) -> Bool {
        name == "SKYPREP_API_KEY" || name.range(of: "^SKYPREP_API_KEY_[A-Z0-9_]+$", options: .regularExpression) != nil
    }

    /// The reason these options cannot be used, naming the option; nil when they are valid.
    public var problem: String? {
        if let domain = syntheticEmailDomain,
            domain.range(of: "^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$", options: .regularExpression)
                == nil
        {
            return "syntheticEmailDomain must be a domain name such as learners.example.edu"
        }
        if let variable = apiKeyVariable, !Self.isAPIKeyVariable(variable) {
            return
                "apiKeyVariable must be SKYPREP_API_KEY or start with SKYPREP_API_KEY_ (e.g. SKYPREP_API_KEY_ACME): another variable could hold any secret"
        }
        if let account, account.isEmpty || account.count > 253 { return "account must be the SkyPrep domain, e.g. acme.skyprepapp.com" }
        if let bad = roleMap.values.first(where: { !Self.roles.contains($0) }) {
            return "role \(bad) is not a SkyPrep role (learner, admin, manager, content_manager)"
        }
        return nil
    }

    /// The SkyPrep role for a launch with these LTI `roles`: of the roles the map names, the least privileged one;
    /// `learner` when it names none.
    ///
    /// A map key is a full role URI, which matches only itself, or a short name (`Instructor`), which matches only
    /// a course-level role: the context membership vocabulary (`…/lis/v2/membership#Instructor`) or a bare legacy
    /// name. An institution's or the system's `Instructor` never passes for a course's: a learner in this course
    /// who teaches elsewhere in the institution stays a learner.
    public func skyPrepRole(for roles: [String]) -> String {
        var mapped: [String] = []
        for role in roles {
            if let found = roleMap[role] {
                mapped.append(found)
            } else if let name = LTIRoles.courseRoleName(role), let found = roleMap[name] {
                mapped.append(found)
            }
        }
        return mapped.min { Self.privilege($0) < Self.privilege($1) } ?? "learner"
    }

    /// SkyPrep's roles from least to most privileged.
    static func privilege(_ role: String) -> Int {
        ["learner", "content_manager", "manager", "admin"].firstIndex(of: role) ?? Int.max
    }
}

/// Why a job's run failed: a stable code the gateway decides by, and words for operators (never a secret).
public struct JobFailure: Sendable, Equatable {
    public var code: String
    public var detail: String

    public init(code: String, detail: String) {
        self.code = code
        self.detail = detail
    }
}

/// A job to queue with another write (``LaunchStore/recordLaunch(_:learner:job:)``), as
/// ``JobQueueStore/enqueueJob(kind:key:payload:runAt:)`` queues it.
public struct JobToQueue: Sendable, Equatable {
    public var kind: String
    public var key: String
    public var payload: String
    public var runAt: Date

    public init(kind: String, key: String, payload: String, runAt: Date) {
        self.kind = kind
        self.key = key
        self.payload = payload
        self.runAt = runAt
    }
}

/// A durable background job (e.g. a SkyPrep provisioning retry), unique by (kind, key).
public struct QueuedJob: Sendable, Equatable {
    public var kind: String
    /// What the job is about, unique within its kind (e.g. a learner id); never a secret.
    public var key: String
    /// The job's input (JSON); never a secret.
    public var payload: String
    /// Bumped by every enqueue of the same (kind, key): a worker that ran an older revision does not delete the job.
    public var revision: Int
    /// Runs so far.
    public var attempts: Int
    public var nextRunAt: Date
    /// The last failure, for operators.
    public var lastError: String?
    /// The last failure's stable code (e.g. `email_in_use`), for the gateway's own decisions.
    public var failureCode: String?
    /// Held: waits for an operator (a failure that retrying cannot fix).
    public var held: Bool
    public var createdAt: Date

    public init(
        kind: String, key: String, payload: String, revision: Int, attempts: Int, nextRunAt: Date,
        lastError: String?, failureCode: String? = nil, held: Bool, createdAt: Date
    ) {
        self.kind = kind
        self.key = key
        self.payload = payload
        self.revision = revision
        self.attempts = attempts
        self.nextRunAt = nextRunAt
        self.lastError = lastError
        self.failureCode = failureCode
        self.held = held
        self.createdAt = createdAt
    }
}
