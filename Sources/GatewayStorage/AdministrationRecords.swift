import Foundation

/// An admin API key as stored: its secret never, only the secret's SHA-256 digest and a short prefix to recognise it by.
public struct StoredAPIKey: Sendable, Equatable {
    /// Public id (`key_…`), named in audit events and by `api-keys revoke`.
    public var id: String
    public var name: String
    /// Scope names (`platforms.read`, …).
    public var scopes: [String]
    /// The secret's first characters (`sk_live_AbCd`), for people to tell keys apart; never enough to use it.
    public var prefix: String
    /// SHA-256 of the secret, hex.
    public var secretDigest: String
    /// Who created it: `cli`, or the id of the key that created it through the API.
    public var createdBy: String
    public var createdAt: Date
    /// After this, the key is refused; nil: it does not expire.
    public var expiresAt: Date?
    /// When it last authenticated a request (to the minute: the time is stored at most once a minute per key).
    public var lastUsedAt: Date?

    public init(
        id: String, name: String, scopes: [String], prefix: String, secretDigest: String, createdBy: String, createdAt: Date,
        expiresAt: Date?, lastUsedAt: Date? = nil
    ) {
        self.id = id
        self.name = name
        self.scopes = scopes
        self.prefix = prefix
        self.secretDigest = secretDigest
        self.createdBy = createdBy
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.lastUsedAt = lastUsedAt
    }
}

/// One change made through the admin API or the command line: who, what, to what, when.
public struct AuditEvent: Sendable, Equatable {
    public var id: String
    /// `cli`, or the id of the API key that made the change.
    public var actor: String
    /// What was done, e.g. `platform.create`, `signing_keys.rotate`, `api_key.delete`.
    public var action: String
    /// The id of what it was done to (a platform, a kid, an API key id).
    public var target: String
    public var at: Date

    public init(id: String, actor: String, action: String, target: String, at: Date) {
        self.id = id
        self.actor = actor
        self.action = action
        self.target = target
        self.at = at
    }
}

/// A position in a list ordered newest first: the time and id of the last row a page showed. The next page
/// starts strictly after it, so rows added meanwhile (newer) never shift or repeat what follows.
public struct ListPosition: Sendable, Equatable {
    public var time: Date
    public var id: String

    public init(time: Date, id: String) {
        self.time = time
        self.id = id
    }
}

/// Which launch records to list (every filter optional), newest first.
public struct LaunchQuery: Sendable, Equatable {
    public var registrationID: String?
    public var learnerID: String?
    public var labID: String?
    public var outcome: String?
    /// Launches at or after this time.
    public var createdFrom: Date?
    /// Launches before this time.
    public var createdBefore: Date?
    /// Only launches after this position (the previous page's last).
    public var after: ListPosition?
    public var limit: Int

    public init(
        registrationID: String? = nil, learnerID: String? = nil, labID: String? = nil, outcome: String? = nil, createdFrom: Date? = nil,
        createdBefore: Date? = nil, after: ListPosition? = nil, limit: Int
    ) {
        self.registrationID = registrationID
        self.learnerID = learnerID
        self.labID = labID
        self.outcome = outcome
        self.createdFrom = createdFrom
        self.createdBefore = createdBefore
        self.after = after
        self.limit = limit
    }
}

/// A one-time invitation to register a platform dynamically: its link carries a token, stored only as a digest.
public struct RegistrationInvite: Sendable, Equatable {
    public var id: String
    /// SHA-256 of the link's token, hex.
    public var tokenDigest: String
    public var note: String?
    /// `cli`, or the API key that created it.
    public var createdBy: String
    public var createdAt: Date
    public var expiresAt: Date
    /// When a registration used it (an invitation works once).
    public var usedAt: Date?
    /// The platform it registered.
    public var registrationID: String?

    public init(
        id: String, tokenDigest: String, note: String?, createdBy: String, createdAt: Date, expiresAt: Date, usedAt: Date? = nil,
        registrationID: String? = nil
    ) {
        self.id = id
        self.tokenDigest = tokenDigest
        self.note = note
        self.createdBy = createdBy
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.usedAt = usedAt
        self.registrationID = registrationID
    }
}

/// What storing a dynamic registration did.
public enum DynamicRegistrationResult: Sendable, Equatable {
    /// A new platform, with this id.
    case created(String)
    /// The platform with the same issuer and client id registered again: its endpoints and deployments updated.
    case updated(String)
    /// The invitation was used or expired meanwhile: nothing stored.
    case inviteUnusable
    /// (issuer, client id) is a platform an operator registered by hand: an invitation does not change it.
    case registeredByHand(String)
}
