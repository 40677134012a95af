import Crypto
import Foundation
import GatewayStorage
import LTICore

/// Learners as the gateway knows them: one (issuer, sub) pair as asserted through one trust anchor (the key set that
/// verified the launch), an opaque id for the vendors.
///
/// A registration that shares another's issuer but not its key set (a self-hosted Canvas keeping
/// `https://canvas.instructure.com`) could otherwise assert the other platform's users — their labs, their SkyPrep
/// accounts. Keyed by the trust anchor too, its learners are other learners.
enum Learners {
    /// The learner of `launch`, stored or updated (names and email as the LMS sends them now).
    ///
    /// A learner the store knows with the same names and email, seen within ``lastSeenResolution``, is not written
    /// again: a repeated launch reads the learner and changes nothing.
    static func upsert(_ launch: ValidatedLaunch, store: any IdentityStore, now: Date) async throws -> LearnerIdentity {
        let token = launch.token
        let subject = token.subject ?? ""
        let anchor = trustAnchor(of: launch.registration)
        let issuer = launch.registration.issuer
        if let known = try await store.identity(issuer: issuer, trustAnchor: anchor, subject: subject),
            known.givenName == token.givenName, known.familyName == token.familyName, known.email == token.email,
            now.timeIntervalSince(known.lastSeen) < lastSeenResolution
        {
            return known
        }
        return try await store.upsertIdentity(
            LearnerIdentity(
                id: learnerID(issuer: issuer, trustAnchor: anchor, subject: subject), issuer: issuer,
                trustAnchor: anchor, subject: subject, givenName: token.givenName, familyName: token.familyName, email: token.email,
                firstSeen: now, lastSeen: now))
    }

    /// How stale a learner's last-seen time may get before a launch writes it again: an hour.
    static let lastSeenResolution: TimeInterval = 3600

    /// The trust anchor of launches verified for `registration`: its key set's URL. Registrations of one platform
    /// (several client ids, one key set) share it, so they share learners.
    static func trustAnchor(of registration: PlatformRegistration) -> String { registration.jwksURL }

    /// A stable, opaque learner id (SPEC "Launch" step 3: never the email): `lti-` and 32 hex digits of
    /// SHA-256(issuer NUL sub NUL trust anchor). Learners stored before trust anchors keep the id they had.
    static func learnerID(issuer: String, trustAnchor: String, subject: String) -> String {
        let digest = SHA256.hash(data: Data((issuer + "\u{0}" + subject + "\u{0}" + trustAnchor).utf8))
        return "lti-" + Hex.encode(digest.prefix(16))
    }
}
