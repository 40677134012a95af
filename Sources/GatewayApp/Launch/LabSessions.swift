import Crypto
import Foundation
import GatewayStorage
import LTICore
import Skillable

/// A learner's launch, carried by the too-many-labs page so that its actions (resume, end, launch the
/// new lab) act for that learner only.
struct LabSession: Sendable, Codable {
    var learnerID: String
    var subject: String
    var registrationID: String
    var deploymentID: String
    var resourceLinkID: String?
    var contextID: String?
    var agsLineItem: String?
    var agsLineItems: String?
    var agsScopes: [String]?
    var request: SkillableLaunchRequest
    /// The LMS link's title (`resource_link.title`), naming the lab the page launches.
    var linkTitle: String?
    /// The launch's `launch_presentation.return_url`, for the page's way back to the course.
    var returnURL: String?

    /// The lab the page's launch starts, as the learner knows it: the link's title, else its lab id.
    var labName: String {
        if let linkTitle, !linkTitle.trimmingCharacters(in: .whitespaces).isEmpty { return linkTitle }
        return "lab \(request.labID)"
    }

    /// The launch's gradebook endpoint.
    var gradebook: LaunchGradebook { LaunchGradebook(lineItem: agsLineItem, lineItems: agsLineItems, scopes: agsScopes ?? []) }
}

/// The too-many-labs page's sessions, kept server-side (hardening L4).
///
/// The page's forms carry only a handle: 256 random bits, sent in form bodies (never URLs), so another site can
/// neither guess it nor forge the page's actions. The learner's name and email stay in the database, stored under a
/// SHA-256 digest of the handle, so not even a copy of the database yields a usable handle. Listing, resuming and
/// ending are checked against Skillable's own list of the learner's labs each time; launching the new lab — the action
/// that starts (and costs) a lab — can be used once.
struct LabSessions: Sendable {
    let store: any LabSessionStore
    let lifetime: TimeInterval

    /// Stores `session` and returns the handle for the page.
    func open(_ session: LabSession, now: Date) async throws -> String {
        let handle = SecureRandom.token()
        try await store.saveLabSession(
            id: Self.digest(handle), data: try StoredJSON.encode(session), expiresAt: now.addingTimeInterval(lifetime))
        return handle
    }

    /// The session of `handle`; throws ``LaunchFailure`` (`lab_session_invalid` or `lab_session_expired`).
    func session(_ handle: String?, now: Date) async throws -> LabSession {
        guard let handle, !handle.isEmpty, handle.utf8.count <= 128, let stored = try await store.labSession(id: Self.digest(handle)) else {
            throw LaunchFailure(.labSessionInvalid)
        }
        guard stored.expiresAt > now else { throw LaunchFailure(.labSessionExpired) }
        return try decode(stored.data)
    }

    /// The session of `handle` for its one launch; throws ``LaunchFailure`` (`lab_session_used` when that launch
    /// happened already, or as ``session(_:now:)``).
    func useLaunch(_ handle: String?, now: Date) async throws -> LabSession {
        _ = try await session(handle, now: now)  // unknown or expired: said as such
        guard let handle, let data = try await store.useLabSessionLaunch(id: Self.digest(handle), now: now) else {
            throw LaunchFailure(.labSessionUsed)
        }
        return try decode(data)
    }

    /// Gives `handle`'s launch back when its use started no lab (Skillable down, a refusal): the learner may try again.
    func releaseLaunch(_ handle: String?) async {
        guard let handle else { return }
        try? await store.releaseLabSessionLaunch(id: Self.digest(handle))
    }

    private func decode(_ data: String) throws -> LabSession {
        do {
            return try StoredJSON.decode(LabSession.self, from: data, what: "the lab session")
        } catch {
            throw LaunchFailure(.labSessionInvalid, underlying: error)
        }
    }

    static func digest(_ handle: String) -> String { Hex.encode(SHA256.hash(data: Data(handle.utf8))) }
}
