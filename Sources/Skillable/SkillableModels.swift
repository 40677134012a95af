import Foundation

/// A `Launch` request (vendor-apis.md "Launch"). `userID` is the gateway's opaque learner id, never an email.
public struct SkillableLaunchRequest: Sendable, Codable, Equatable {
    public var labID: Int
    public var userID: String
    public var firstName: String?
    public var lastName: String?
    public var email: String?
    public var classID: String?
    public var tag: String?
    public var regionID: Int?
    public var lang: String?
    public var maxActiveLabs: Int?
    public var maxSavedLabs: Int?
    public var durationMinutes: Int?
    /// `variable-<Name>=value` lab variables.
    public var variables: [String: String]

    public init(
        labID: Int, userID: String, firstName: String? = nil, lastName: String? = nil, email: String? = nil,
        classID: String? = nil, tag: String? = nil, regionID: Int? = nil, lang: String? = nil,
        maxActiveLabs: Int? = nil, maxSavedLabs: Int? = nil, durationMinutes: Int? = nil,
        variables: [String: String] = [:]
    ) {
        self.labID = labID
        self.userID = userID
        self.firstName = firstName
        self.lastName = lastName
        self.email = email
        self.classID = classID
        self.tag = tag
        self.regionID = regionID
        self.lang = lang
        self.maxActiveLabs = maxActiveLabs
        self.maxSavedLabs = maxSavedLabs
        self.durationMinutes = durationMinutes
        self.variables = variables
    }

    var query: [(String, String)] {
        var q: [(String, String)] = [("labid", String(labID)), ("userid", userID)]
        if let firstName { q.append(("firstname", firstName)) }
        if let lastName { q.append(("lastname", lastName)) }
        if let email { q.append(("email", email)) }
        if let classID { q.append(("classId", classID)) }
        if let tag { q.append(("tag", tag)) }
        if let regionID { q.append(("regionId", String(regionID))) }
        if let lang { q.append(("lang", lang)) }
        if let maxActiveLabs { q.append(("maxActiveLabs", String(maxActiveLabs))) }
        if let maxSavedLabs { q.append(("maxSavedLabs", String(maxSavedLabs))) }
        if let durationMinutes { q.append(("durationMinutes", String(durationMinutes))) }
        for (name, value) in variables.sorted(by: { $0.key < $1.key }) { q.append(("variable-\(name)", value)) }
        return q
    }
}

/// A `Launch` response: `{Result, Url, LabInstanceId, Expires, Status, Error}`.
public struct SkillableLaunchResponse: Sendable, Decodable {
    public var result: SkillableLaunchResult
    public var url: String?
    public var labInstanceID: Int64?
    public var expires: Int64?
    public var status: Int
    public var error: String?
    /// Every top-level string field, for recognising answers whose shape is not documented (deferred launch).
    public var stringFields: [String: String]

    enum CodingKeys: String, CodingKey {
        case result = "Result", url = "Url", labInstanceID = "LabInstanceId", expires = "Expires"
        case status = "Status", error = "Error"
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(
        result: SkillableLaunchResult, url: String?, labInstanceID: Int64?, expires: Int64?, status: Int, error: String?,
        stringFields: [String: String] = [:]
    ) {
        self.result = result
        self.url = url
        self.labInstanceID = labInstanceID
        self.expires = expires
        self.status = status
        self.error = error
        self.stringFields = stringFields
    }

    public init(from decoder: any Decoder) throws {
        let all = try decoder.container(keyedBy: AnyKey.self)
        var strings: [String: String] = [:]
        for key in all.allKeys { if let value = try? all.decode(String.self, forKey: key) { strings[key.stringValue] = value } }
        stringFields = strings
        let c = try decoder.container(keyedBy: CodingKeys.self)
        result = SkillableLaunchResult(code: try c.decodeIfPresent(Int.self, forKey: .result) ?? 0)
        url = try c.decodeIfPresent(String.self, forKey: .url)
        labInstanceID = try c.decodeIfPresent(Int64.self, forKey: .labInstanceID)
        expires = try c.decodeIfPresent(Int64.self, forKey: .expires)
        status = try c.decodeIfPresent(Int.self, forKey: .status) ?? 0
        error = try c.decodeIfPresent(String.self, forKey: .error)
    }
}

/// One lab profile of the `Catalog` answer.
public struct SkillableLabProfile: Sendable, Decodable, Equatable {
    public var id: Int
    public var name: String
    public var number: String?
    public var description: String?
    public var durationMinutes: Int?
    public var tags: [String]?
    public var enabled: Bool?
    public var developmentStatusID: Int?

    enum CodingKeys: String, CodingKey {
        case id = "Id", name = "Name", number = "Number", description = "Description"
        case durationMinutes = "DurationMinutes", tags = "Tags", enabled = "Enabled", developmentStatusID = "DevelopmentStatusId"
    }

    /// Only enabled profiles in development status Complete (10) can be launched with a production key.
    public var isLaunchable: Bool { enabled == true && developmentStatusID == 10 }
}

/// The `Catalog` answer.
public struct SkillableCatalog: Sendable, Decodable {
    public var labProfiles: [SkillableLabProfile]
    enum CodingKeys: String, CodingKey { case labProfiles = "LabProfiles" }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        labProfiles = try c.decodeIfPresent([SkillableLabProfile].self, forKey: .labProfiles) ?? []
    }
}

/// A running or saved lab of `UserRunningAndSavedLabs`.
public struct SkillableUserLab: Sendable, Decodable, Equatable {
    public var labInstanceID: Int64
    public var labProfileID: Int?
    public var labProfileName: String?
    public var start: Int64?
    public var expires: Int64?
    enum CodingKeys: String, CodingKey {
        case labInstanceID = "LabInstanceId", labProfileID = "LabProfileId", labProfileName = "LabProfileName"
        case start = "Start", expires = "Expires"
    }
}

/// The `UserRunningAndSavedLabs` answer.
public struct SkillableUserLabs: Sendable, Decodable {
    public var runningLabs: [SkillableUserLab]
    public var savedLabs: [SkillableUserLab]
    enum CodingKeys: String, CodingKey { case runningLabs = "RunningLabs", savedLabs = "SavedLabs" }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        runningLabs = try c.decodeIfPresent([SkillableUserLab].self, forKey: .runningLabs) ?? []
        savedLabs = try c.decodeIfPresent([SkillableUserLab].self, forKey: .savedLabs) ?? []
    }
}

/// The `Details` answer (the fields the gateway reads).
public struct SkillableLabDetails: Sendable, Decodable {
    public var id: Int64?
    public var state: String?
    public var completionStatus: String?
    public var userExternalID: String?
    public var tag: String?
    public var examScore: Double?
    public var examMaxPossibleScore: Double?
    enum CodingKeys: String, CodingKey {
        case id = "Id", state = "State", completionStatus = "CompletionStatus", userExternalID = "UserExternalId"
        case tag = "Tag", examScore = "ExamScore", examMaxPossibleScore = "ExamMaxPossibleScore"
    }
}

/// An answer that carries only a URL (`Resume`, `LabAccessUrl`).
public struct SkillableURLResponse: Sendable, Decodable {
    public var url: String?
    enum CodingKeys: String, CodingKey { case url = "Url" }
}

/// The `Status`/`Error` envelope of every answer.
struct SkillableEnvelope: Decodable {
    var status: Int?
    var error: String?
    enum CodingKeys: String, CodingKey { case status = "Status", error = "Error" }
}

/// An answer read once: its envelope, and the command's own fields when they are all there (nil otherwise: the
/// envelope may still say why).
struct SkillableAnswer<Fields: Decodable>: Decodable {
    var envelope: SkillableEnvelope
    var fields: Fields?

    init(from decoder: any Decoder) throws {
        envelope = try SkillableEnvelope(from: decoder)
        fields = try? Fields(from: decoder)
    }
}
