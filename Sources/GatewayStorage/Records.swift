import Foundation
import LTICore

/// A learner as the gateway knows them: one (issuer, sub) pair and the opaque id used with vendors.
public struct LearnerIdentity: Sendable, Equatable {
    /// Opaque, stable id derived from (issuer, sub, trust anchor); the Skillable `userid`. Never the email.
    public var id: String
    public var issuer: String
    /// The platform key set (its JWKS URL) that verified this learner's first launch: only launches verified by the
    /// same key set are this learner's. Registrations that share an issuer but not a key set never share learners.
    public var trustAnchor: String
    public var subject: String
    public var givenName: String?
    public var familyName: String?
    public var email: String?
    public var firstSeen: Date
    public var lastSeen: Date

    public init(
        id: String, issuer: String, trustAnchor: String, subject: String, givenName: String?, familyName: String?,
        email: String?, firstSeen: Date, lastSeen: Date
    ) {
        self.id = id
        self.issuer = issuer
        self.trustAnchor = trustAnchor
        self.subject = subject
        self.givenName = givenName
        self.familyName = familyName
        self.email = email
        self.firstSeen = firstSeen
        self.lastSeen = lastSeen
    }
}

/// One launch as recorded for operators and grade passback.
public struct LaunchRecord: Sendable, Equatable {
    public var id: String
    public var registrationID: String
    public var deploymentID: String
    public var learnerID: String
    public var subject: String
    public var messageType: String
    public var resourceLinkID: String?
    public var contextID: String?
    public var labID: String?
    /// Stable outcome name, e.g. `launched`, `skillable_result_3`, `labid_missing`.
    public var outcome: String
    /// Skillable's raw result code, when Skillable answered.
    public var vendorResultCode: Int?
    public var labInstanceID: String?
    /// The AGS line item URL, when the launch carried one.
    public var agsLineItem: String?
    /// The AGS line items URL (the context's gradebook columns), when the launch carried one.
    public var agsLineItems: String?
    /// The AGS scopes the platform granted for this launch.
    public var agsScopes: [String]
    public var createdAt: Date
    /// Where the lab stands, from Skillable's webhooks (`scored`, `saved`, `torn-down`, …): the last event's name.
    public var labState: String?
    /// Skillable's `CompletionStatus` from the last lab event that carried one.
    public var completionStatus: Int?
    /// When the lab ended (torn down), from Skillable's `End`.
    public var endedAt: Date?

    public init(
        id: String, registrationID: String, deploymentID: String, learnerID: String, subject: String,
        messageType: String, resourceLinkID: String?, contextID: String?, labID: String?, outcome: String,
        vendorResultCode: Int?, labInstanceID: String?, agsLineItem: String?, agsLineItems: String? = nil, agsScopes: [String] = [],
        createdAt: Date, labState: String? = nil, completionStatus: Int? = nil, endedAt: Date? = nil
    ) {
        self.id = id
        self.registrationID = registrationID
        self.deploymentID = deploymentID
        self.learnerID = learnerID
        self.subject = subject
        self.messageType = messageType
        self.resourceLinkID = resourceLinkID
        self.contextID = contextID
        self.labID = labID
        self.outcome = outcome
        self.vendorResultCode = vendorResultCode
        self.labInstanceID = labInstanceID
        self.agsLineItem = agsLineItem
        self.agsLineItems = agsLineItems
        self.agsScopes = agsScopes
        self.createdAt = createdAt
        self.labState = labState
        self.completionStatus = completionStatus
        self.endedAt = endedAt
    }
}

/// An open lab picker: what the deep-linking request allowed, kept until the instructor submits (once).
///
/// - Important: `id` is a secret (it authorises the submission); never log it.
public struct DeepLinkSession: Sendable, Equatable {
    public var id: String
    public var registrationID: String
    public var deploymentID: String
    public var returnURL: String
    /// The request's `data`, exactly as received; nil when the request had none.
    public var data: String?
    public var acceptMultiple: Bool
    public var acceptLineItem: Bool
    public var createdAt: Date
    public var expiresAt: Date

    public init(
        id: String, registrationID: String, deploymentID: String, returnURL: String, data: String?,
        acceptMultiple: Bool, acceptLineItem: Bool, createdAt: Date, expiresAt: Date
    ) {
        self.id = id
        self.registrationID = registrationID
        self.deploymentID = deploymentID
        self.returnURL = returnURL
        self.data = data
        self.acceptMultiple = acceptMultiple
        self.acceptLineItem = acceptLineItem
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }
}

/// How labs are launched for learners of one platform registration (all optional; nil = Skillable's default).
public struct PlatformLaunchOptions: Sendable, Equatable, Codable {
    public var maxActiveLabs: Int?
    public var maxSavedLabs: Int?
    public var durationMinutes: Int?
    public var regionID: Int?
    /// Lab language; nil → the launch's `locale`.
    public var lang: String?
    /// Send `tag` = platform registration and course, for traceability in Skillable.
    public var sendTag: Bool
    /// Fill `variable-LtiContextId`, `variable-LtiContextTitle`, `variable-LtiRoles` from the launch.
    public var sendContextVariables: Bool
    /// Whether logins offer LTI Platform Storage (cookie-less launches in the LMS frame); nil = ``PlatformStorageMode/auto``.
    public var platformStorage: PlatformStorageMode?
    /// The frame storage messages go to when the login names none in `lti_storage_target` (Blackboard: `lti_storage_frame`).
    /// With ``PlatformStorageMode/auto``, setting it makes every login offer storage.
    public var storageFrame: String?
    /// The origin of the platform's storage frame when it is not its authorization endpoint's (older Canvas
    /// versions answered from the institution's own domain); nil = the authorization endpoint's origin.
    /// Storage messages go only to this origin and answers count only from it — never `*`, which would let
    /// any page that embeds the activity hand a launch its own secret.
    public var storageOrigin: String?
    /// Roles that may open the lab picker (full URIs, or short names of course roles); nil = ``defaultPickerRoles``.
    public var pickerRoles: [String]?
    /// The origins whose pages may show the gateway's pages with actions (picker, lab choices, storage and
    /// new-window pages) in a frame: origins, `https://*.domain` wildcards, or `*` for any; nil = derived from the
    /// registration (its issuer's and authorization endpoint's origins, the storage origin, and the course domains
    /// of the known cloud LMSs).
    public var frameAncestors: [String]?

    /// Who may add labs to a course by default: its instructors, content developers, teaching assistants and
    /// administrators, and the institution's or the system's administrators.
    public static let defaultPickerRoles = [
        "Instructor", "ContentDeveloper", "Administrator", "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant",
        "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator",
        "http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator",
    ]

    public init(
        maxActiveLabs: Int? = nil, maxSavedLabs: Int? = nil, durationMinutes: Int? = nil, regionID: Int? = nil,
        lang: String? = nil, sendTag: Bool = true, sendContextVariables: Bool = false,
        platformStorage: PlatformStorageMode? = nil, storageFrame: String? = nil, storageOrigin: String? = nil,
        pickerRoles: [String]? = nil, frameAncestors: [String]? = nil
    ) {
        self.maxActiveLabs = maxActiveLabs
        self.maxSavedLabs = maxSavedLabs
        self.durationMinutes = durationMinutes
        self.regionID = regionID
        self.lang = lang
        self.sendTag = sendTag
        self.sendContextVariables = sendContextVariables
        self.platformStorage = platformStorage
        self.storageFrame = storageFrame
        self.storageOrigin = storageOrigin
        self.pickerRoles = pickerRoles
        self.frameAncestors = frameAncestors
    }

    /// `scheme://host[:port]` with nothing after it; https, or http on a loopback host.
    static func isOrigin(_ value: String) -> Bool {
        guard let components = URLComponents(string: value), let scheme = components.scheme?.lowercased(),
            let host = components.host?.lowercased(), !host.isEmpty, components.path.isEmpty, components.query == nil,
            components.fragment == nil, components.user == nil,
            host.range(of: "^[a-z0-9.:\\[\\]-]+$", options: .regularExpression) != nil  // a host name or address: no `*`, no spaces
        else { return false }
        return scheme == "https" || (scheme == "http" && ["localhost", "127.0.0.1", "::1", "[::1]"].contains(host))
    }

    /// An origin, an `https://*.domain` wildcard (two labels at least after the `*`), or `*`.
    static func isFrameAncestor(_ value: String) -> Bool {
        if value == "*" || isOrigin(value) { return true }
        guard value.lowercased().hasPrefix("https://*."), let domain = URLComponents(string: "https://" + value.dropFirst(10))?.host,
            value.dropFirst(10).lowercased() == domain
        else { return false }
        return domain.split(separator: ".").count >= 2
    }

    /// The reason these options cannot be used, naming the option; nil when they are valid.
    public var problem: String? {
        if let v = maxActiveLabs, !(1...100).contains(v) { return "maxActiveLabs must be 1…100" }
        if let v = maxSavedLabs, !(0...100).contains(v) { return "maxSavedLabs must be 0…100" }
        if let v = durationMinutes, !(5...10_080).contains(v) { return "durationMinutes must be 5…10080" }
        if let v = regionID, v <= 0 { return "regionId must be a positive Skillable region id" }
        if let v = lang, v.range(of: "^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{1,8})*$", options: .regularExpression) == nil {
            return "lang must be a language tag such as en or pt-BR"
        }
        if let v = storageFrame, !PlatformStorageFrame.isValid(v) {
            return "storageFrame must be a frame name of 1…64 letters, digits, '_' or '-' (not a window property such as top or parent)"
        }
        if let v = storageOrigin, !Self.isOrigin(v) {
            return "storageOrigin must be an origin such as https://school.instructure.com (https; http only for localhost)"
        }
        if let v = frameAncestors, v.isEmpty || v.count > 20 || !v.allSatisfy(Self.isFrameAncestor) {
            return "frameAncestors must be 1…20 origins such as https://school.instructure.com, wildcards such as https://*.instructure.com, or *"
        }
        return nil
    }
}

/// Frame names a storage message may go to: `_parent`, or a child frame of the LMS window named with
/// letters, digits, `_` and `-` — never a name a window answers with one of its own properties, nor digits
/// alone (`frames["0"]` is the first child frame by position, whatever its name).
public enum PlatformStorageFrame {
    static let windowProperties: Set<String> = [
        "top", "parent", "opener", "self", "window", "frames", "length", "location", "close", "closed", "focus", "blur", "postMessage",
    ]

    public static func isValid(_ name: String) -> Bool {
        name == "_parent"
            || (name.range(of: "^(?![0-9]+$)[A-Za-z0-9_-]{1,64}$", options: .regularExpression) != nil && !windowProperties.contains(name))
    }
}

/// Whether a platform's logins offer LTI Platform Storage.
public enum PlatformStorageMode: String, Sendable, Codable, CaseIterable {
    /// When the login carries `lti_storage_target`, or the platform has a storage frame configured.
    case auto
    /// On every login (to `lti_storage_target`, else the configured frame, else the parent window).
    case on
    /// Never: the state cookies only.
    case off
}

/// A too-many-labs page's session as stored.
public struct StoredLabSession: Sendable, Equatable {
    /// The session (JSON).
    public var data: String
    /// When the page's actions stop working.
    public var expiresAt: Date
    /// Whether the page's launch action has been used.
    public var launchUsed: Bool

    /// A stored session (see ``LabSessionStore``).
    public init(data: String, expiresAt: Date, launchUsed: Bool) {
        self.data = data
        self.expiresAt = expiresAt
        self.launchUsed = launchUsed
    }
}

/// What a claim on a lab start found.
public enum LabStartClaim: Sendable, Equatable {
    /// The caller holds the start now.
    case claimed
    /// Another holder is starting the lab.
    case running
    /// A start finished moments ago with this outcome, to share.
    case finished(outcome: String)
}
