import Foundation
import GatewaySupport

/// The sandbox's lab profiles, lab instances and scripted outcomes.
///
/// Behaves as the Lab API v3 documents: a user with a saved instance of the lab gets Result 6, a user
/// at `maxActiveLabs` running labs gets Result 2, only enabled Complete profiles launch. Tests and the
/// control endpoint can script the next results, add latency or make calls fail.
public actor SkillableSandboxState {
    /// A lab instance the sandbox started.
    public struct Instance: Sendable, Equatable {
        public enum State: String, Sendable { case running, saved, cancelled }
        public var id: Int64
        public var labProfileID: Int
        public var userID: String
        public var firstName: String?
        public var lastName: String?
        public var email: String?
        public var tag: String?
        public var variables: [String: String]
        public var state: State
        public var start: Int64
        public var expires: Int64
    }

    /// A scripted failure of the next calls.
    public enum Failure: Error, Sendable, Equatable {
        /// HTTP 500 with an HTML body.
        case serverError
        /// No answer until the client gives up.
        case hang
        /// The command is carried out (e.g. a lab starts), but the answer never comes: an ambiguous failure.
        case performThenHang
    }

    public private(set) var profiles: [SandboxLabProfile]
    public private(set) var instances: [Int64: Instance] = [:]
    /// Instance ids by learner, and the oldest id that may still exist (ids only grow).
    private var idsByUser: [String: [Int64]] = [:]
    private var oldestID: Int64 = 40_000_001
    /// Calls received, by lower-cased command name.
    public private(set) var calls: [String: Int] = [:]
    /// The last query of each command (lower-cased parameter names).
    public private(set) var lastQuery: [String: [String: String]] = [:]
    private var scriptedResults: [Int] = []
    private var scriptedFailures: [(failure: Failure, command: String?)] = []
    private var scriptedLabURLs: [String] = []
    private var scriptedDeferredLaunches = 0
    public private(set) var latency: Duration = .zero
    /// How long a scripted `.hang` holds the call before answering 504.
    public private(set) var hangDuration: Duration = .seconds(30)
    public var defaultMaxActiveLabs = 2
    /// Lab instances kept; beyond this the oldest are torn down (a real lab ends at its expiry), so a
    /// long-running sandbox does not grow without bound.
    public var maxInstances = 5000
    private var nextInstanceID: Int64 = 40_000_001
    private let now: @Sendable () -> Date

    public init(profiles: [SandboxLabProfile] = SandboxLabProfile.defaults, now: @escaping @Sendable () -> Date = { Date() }) {
        self.profiles = profiles
        self.now = now
    }

    /// The next `Launch` calls answer these results (in order) instead of their natural outcome.
    public func scriptLaunchResults(_ codes: [Int]) { scriptedResults.append(contentsOf: codes) }
    /// The next `count` launches answer as a consumer set to "Generate a deferred launch token" does
    /// (Result 2 with a URL where the learner manages their labs).
    public func scriptDeferredLaunches(_ count: Int) { scriptedDeferredLaunches += count }
    /// The next successful launches answer these lab URLs (e.g. a foreign host, to test redirect checks).
    public func scriptLabURLs(_ urls: [String]) { scriptedLabURLs.append(contentsOf: urls) }
    /// The next calls fail this way: calls of `command` (lower-cased, e.g. "launch"), or of any command when nil.
    public func scriptFailures(_ failures: [Failure], command: String? = nil) {
        scriptedFailures.append(contentsOf: failures.map { ($0, command?.lowercased()) })
    }
    /// Every call waits this long before answering (e.g. 150 ms for a realistic vendor).
    public func setLatency(_ latency: Duration) { self.latency = latency }
    public func setHangDuration(_ duration: Duration) { hangDuration = duration }
    public func setMaxInstances(_ count: Int) { maxInstances = max(1, count) }
    /// Total calls of all commands.
    public var totalCalls: Int { calls.values.reduce(0, +) }

    public func reset() {
        instances = [:]
        idsByUser = [:]
        calls = [:]
        lastQuery = [:]
        scriptedResults = []
        scriptedFailures = []
        scriptedLabURLs = []
        scriptedDeferredLaunches = 0
        latency = .zero
    }

    /// Saves a running instance (as if the learner had saved it).
    public func save(instanceID: Int64) {
        instances[instanceID]?.state = .saved
    }

    /// Answers one API command (lower-cased name, lower-cased parameter names) as JSON, or the failure scripted for it.
    func answer(_ command: String, _ query: [String: String], labURL: @Sendable (Int64) -> String) -> Result<Data, Failure> {
        let failure = record(command, query)
        if let failure, failure != .performThenHang { return .failure(failure) }
        let body: [String: Any?]
        switch command {
        case "launch": body = launch(query, labURL: labURL)
        case "catalog": body = catalog()
        case "userrunningandsavedlabs": body = userLabs(query)
        case "cancel", "resume", "labaccessurl", "details": body = instanceCommand(command, query, labURL: labURL)
        default: body = ["Status": 0, "Error": "Unknown command."]
        }
        if let failure { return .failure(failure) }
        return .success(Self.serialize(body))
    }

    /// JSON of the sandbox's answers (strings, integers, booleans, null, arrays and objects of them).
    static func serialize(_ object: [String: Any?]) -> Data {
        var out = ""
        write(object, to: &out)
        return Data(out.utf8)
    }

    private static func write(_ value: Any?, to out: inout String) {
        switch value {
        case .none: out += "null"
        case let v as String: JSONEscaping.writeString(v, to: &out)
        case let v as Bool: out += v ? "true" : "false"
        case let v as Int: out += String(v)
        case let v as Int64: out += String(v)
        case let v as Double: out += String(v)
        case let v as [String: Any?]:
            out += "{"
            for (index, key) in v.keys.sorted().enumerated() {
                if index > 0 { out += "," }
                JSONEscaping.writeString(key, to: &out)
                out += ":"
                write(v[key] ?? nil, to: &out)
            }
            out += "}"
        case let v as [[String: Any?]]: writeArray(v, to: &out)
        case let v as [Any?]: writeArray(v, to: &out)
        case .some(let v):
            // An optional inside `Any` (e.g. a name that may be missing): its value, or null.
            let mirror = Mirror(reflecting: v)
            if mirror.displayStyle == .optional { write(mirror.children.first?.value, to: &out) } else { JSONEscaping.writeString("\(v)", to: &out) }
        }
    }

    private static func writeArray<T>(_ list: [T], to out: inout String) {
        out += "["
        for (index, item) in list.enumerated() {
            if index > 0 { out += "," }
            write(item, to: &out)
        }
        out += "]"
    }

    private func record(_ command: String, _ query: [String: String]) -> Failure? {
        calls[command, default: 0] += 1
        lastQuery[command] = query
        guard let index = scriptedFailures.firstIndex(where: { $0.command == nil || $0.command == command }) else { return nil }
        return scriptedFailures.remove(at: index).failure
    }

    private func launch(_ q: [String: String], labURL: @Sendable (Int64) -> String) -> [String: Any?] {
        guard let labID = q["labid"].flatMap(Int.init), let userID = q["userid"], !userID.isEmpty else {
            return launchAnswer(result: 140, error: "labid and userid are required.")
        }
        if scriptedDeferredLaunches > 0 {
            scriptedDeferredLaunches -= 1
            return [
                "Result": 2, "Url": labURL(-1).replacingOccurrences(of: "/lab/-1", with: "/deferred/\(UUID().uuidString)"),
                "LabInstanceId": nil, "Expires": nil, "Status": 1, "Error": nil,
            ]
        }
        if !scriptedResults.isEmpty {
            let code = scriptedResults.removeFirst()
            if code != 1 { return launchAnswer(result: code, error: code == 0 ? "Scripted error." : nil) }
        }
        guard let profile = profiles.first(where: { $0.id == labID }) else {
            return launchAnswer(result: 0, error: "Lab profile \(labID) was not found.")
        }
        guard profile.enabled, profile.developmentStatusID == 10 else {
            return launchAnswer(result: 0, error: "Lab profile \(labID) is not available for launch.")
        }
        let mine = instances(of: userID)
        if mine.contains(where: { $0.labProfileID == labID && $0.state == .saved }) {
            return launchAnswer(result: 6, error: nil)
        }
        let maxActive = q["maxactivelabs"].flatMap(Int.init) ?? defaultMaxActiveLabs
        if mine.filter({ $0.state == .running }).count >= maxActive {
            return launchAnswer(result: 2, error: nil)
        }
        let id = nextInstanceID
        nextInstanceID += 1
        let start = Int64(now().timeIntervalSince1970)
        let minutes = q["durationminutes"].flatMap(Int64.init) ?? Int64(profile.durationMinutes)
        var variables: [String: String] = [:]
        for (name, value) in q where name.hasPrefix("variable-") { variables[String(name.dropFirst(9))] = value }
        while instances.count >= maxInstances, oldestID < id {
            if let gone = instances.removeValue(forKey: oldestID) {
                idsByUser[gone.userID]?.removeAll { $0 == gone.id }
                if idsByUser[gone.userID]?.isEmpty == true { idsByUser[gone.userID] = nil }
            }
            oldestID += 1
        }
        idsByUser[userID, default: []].append(id)
        instances[id] = Instance(
            id: id, labProfileID: labID, userID: userID, firstName: q["firstname"], lastName: q["lastname"],
            email: q["email"], tag: q["tag"], variables: variables, state: .running,
            start: start, expires: start + minutes * 60)
        let url = scriptedLabURLs.isEmpty ? labURL(id) : scriptedLabURLs.removeFirst()
        return ["Result": 1, "Url": url, "LabInstanceId": id, "Expires": start + minutes * 60, "Status": 1, "Error": nil]
    }

    /// How many learners have labs (bounded by the lab bound).
    var learnersWithLabs: Int { idsByUser.count }

    /// The learner's instances, oldest first.
    private func instances(of userID: String) -> [Instance] {
        (idsByUser[userID] ?? []).compactMap { instances[$0] }
    }

    private func launchAnswer(result: Int, error: String?) -> [String: Any?] {
        ["Result": result, "Url": nil, "LabInstanceId": nil, "Expires": nil, "Status": result == 1 ? 1 : 0, "Error": error]
    }

    private func catalog() -> [String: Any?] {
        ["LabSeries": [[String: Any?]](), "LabProfiles": profiles.map(\.json), "Status": 1, "Error": nil]
    }

    private func userLabs(_ q: [String: String]) -> [String: Any?] {
        guard let userID = q["userid"] else { return ["Status": 0, "Error": "userid is required."] }
        func entry(_ i: Instance) -> [String: Any?] {
            [
                "LabInstanceId": i.id, "LabProfileId": i.labProfileID,
                "LabProfileName": profiles.first { $0.id == i.labProfileID }?.name, "Start": i.start, "Expires": i.expires,
            ]
        }
        let mine = instances(of: userID)
        return [
            "RunningLabs": mine.filter { $0.state == .running }.map(entry),
            "SavedLabs": mine.filter { $0.state == .saved }.map(entry), "Status": 1, "Error": nil,
        ]
    }

    private func instanceCommand(_ command: String, _ q: [String: String], labURL: @Sendable (Int64) -> String) -> [String: Any?] {
        guard let id = q["labinstanceid"].flatMap(Int64.init), var instance = instances[id], instance.state != .cancelled else {
            return ["Status": 0, "Error": "Lab instance not found."]
        }
        switch command {
        case "cancel":
            instance.state = .cancelled
            instances[id] = instance
            return ["Status": 1, "Error": nil]
        case "resume":
            guard instance.state == .saved else { return ["Status": 0, "Error": "Lab instance is not saved."] }
            instance.state = .running
            instances[id] = instance
            return ["Url": labURL(id), "Status": 1, "Error": nil]
        case "labaccessurl":
            guard instance.state == .running else { return ["Status": 0, "Error": "Lab instance is not running."] }
            return ["Url": labURL(id), "Status": 1, "Error": nil]
        default:  // details
            let profile = profiles.first { $0.id == instance.labProfileID }
            return [
                "Id": id, "LabProfileId": instance.labProfileID, "LabProfileName": profile?.name,
                "UserExternalId": instance.userID, "UserFirstName": instance.firstName, "UserLastName": instance.lastName,
                "Tag": instance.tag, "Start": instance.start, "Expires": instance.expires,
                "State": instance.state == .running ? "Running" : instance.state == .saved ? "Saved" : "Off",
                "CompletionStatus": "Activity", "ExamScore": nil, "ExamMaxPossibleScore": nil, "Status": 1, "Error": nil,
            ]
        }
    }

    func instance(_ id: Int64) -> Instance? { instances[id] }
}

/// A lab profile of the sandbox catalog.
public struct SandboxLabProfile: Sendable, Equatable {
    public var id: Int
    public var name: String
    public var number: String
    public var description: String
    public var durationMinutes: Int
    public var tags: [String]
    public var enabled: Bool
    /// 10 = Complete (launchable with a production key).
    public var developmentStatusID: Int

    public init(
        id: Int, name: String, number: String, description: String, durationMinutes: Int, tags: [String],
        enabled: Bool = true, developmentStatusID: Int = 10
    ) {
        self.id = id
        self.name = name
        self.number = number
        self.description = description
        self.durationMinutes = durationMinutes
        self.tags = tags
        self.enabled = enabled
        self.developmentStatusID = developmentStatusID
    }

    var json: [String: Any?] {
        [
            "Id": id, "Name": name, "Number": number, "Description": description, "DurationMinutes": durationMinutes,
            "Tags": tags, "Enabled": enabled, "DevelopmentStatusId": developmentStatusID, "SeriesId": 1,
            "DeliveryRegions": [["Id": 1, "Name": "US East"]],
        ]
    }

    /// The catalog a fresh sandbox offers.
    public static let defaults: [SandboxLabProfile] = [
        .init(
            id: 1001, name: "Create a Virtual Machine in Azure", number: "AZ-101",
            description: "Deploy and connect to a Windows virtual machine.", durationMinutes: 60, tags: ["azure", "compute"]),
        .init(
            id: 1002, name: "Configure Cisco IOS Routing", number: "NET-210",
            description: "Set up static and OSPF routes between three routers.", durationMinutes: 90, tags: ["networking"]),
        .init(
            id: 1003, name: "Kubernetes Basics", number: "K8S-100",
            description: "Deploy, scale and expose an application on a cluster.", durationMinutes: 45, tags: ["containers", "linux"]),
        .init(
            id: 1004, name: "Security Operations (in development)", number: "SEC-300",
            description: "Not yet complete.", durationMinutes: 60, tags: ["security"], developmentStatusID: 1),
        .init(
            id: 1005, name: "Retired Windows Server 2012 Lab", number: "WS-2012",
            description: "Disabled.", durationMinutes: 60, tags: ["windows"], enabled: false),
    ]
}
