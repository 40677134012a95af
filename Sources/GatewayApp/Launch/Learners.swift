import Crypto
import Foundation
import GatewayStorage
import LTICore

/// Learners as the gateway knows them: one (issuer, sub) pair, an opaque id for the vendors.
enum Learners {
    /// The learner of `launch`, stored or updated (names and email as the LMS sends them now).
    static func upsert(_ launch: ValidatedLaunch, store: any IdentityStore, now: Date) async throws -> LearnerIdentity {
        let token = launch.token
        let subject = token.subject ?? ""
        return try await store.upsertIdentity(
            LearnerIdentity(
                id: learnerID(issuer: launch.registration.issuer, subject: subject), issuer: launch.registration.issuer,
                subject: subject, givenName: token.givenName, familyName: token.familyName, email: token.email,
                firstSeen: now, lastSeen: now))
    }

    /// A stable, opaque learner id (SPEC "Launch" step 3: never the email): `lti-` and 32 hex digits of
    /// SHA-256(issuer NUL sub).
    static func learnerID(issuer: String, subject: String) -> String {
        let digest = SHA256.hash(data: Data((issuer + "\u{0}" + subject).utf8))
        return "lti-" + Hex.encode(digest.prefix(16))
    }
}
