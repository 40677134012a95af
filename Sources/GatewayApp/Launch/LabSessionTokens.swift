import Foundation
import LTICore
import Skillable

/// A learner's launch, carried by the deferred-launch page so that its actions (resume, end, launch the
/// new lab) act for that learner only.
struct LabSession: Sendable, Codable {
    var learnerID: String
    var subject: String
    var registrationID: String
    var deploymentID: String
    var resourceLinkID: String?
    var contextID: String?
    var agsLineItem: String?
    var request: SkillableLaunchRequest
}

/// Issues and checks lab-session tokens: internal tokens (``InternalTokens``: never a signature a platform would
/// accept), short-lived, sent only in
/// form bodies (never URLs) — unguessable to another site, so they also protect the actions against
/// cross-site forgery. The learner id inside is what every action is checked against.
struct LabSessionTokens: Sendable {
    let toolKeys: ToolKeyService
    let lifetime: TimeInterval
    static let audience = "lti-gateway/lab-session"

    func issue(_ session: LabSession, now: Date) throws -> String {
        let data = try JSONEncoder().encode(session)
        let object = try JSONSerialization.jsonObject(with: data)
        guard let sessionClaims = object as? [String: any Sendable] else { throw LaunchFailure(.labSessionInvalid) }
        return try InternalTokens(ring: toolKeys.ring).sign(claims: [
            "aud": Self.audience, "exp": Int(now.addingTimeInterval(lifetime).timeIntervalSince1970), "session": sessionClaims,
        ])
    }

    /// The session inside `token`; throws ``LaunchFailure`` (`lab_session_invalid` or `lab_session_expired`).
    func verify(_ token: String?, now: Date) throws -> LabSession {
        struct Claims: Decodable { var aud: String; var exp: Double; var session: LabSession }
        guard let token, let payload = InternalTokens(ring: toolKeys.ring).payload(of: token, now: now),
            let claims = try? JSONDecoder().decode(Claims.self, from: payload), claims.aud == Self.audience
        else {
            throw LaunchFailure(.labSessionInvalid)
        }
        guard now.timeIntervalSince1970 < claims.exp else {
            throw LaunchFailure(.labSessionExpired)
        }
        return claims.session
    }
}
