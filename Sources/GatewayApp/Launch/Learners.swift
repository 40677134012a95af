import Crypto
import Foundation
import GatewayStorage
import LTICore
import Synchronization

/// Learners as the gateway knows them: one (issuer, sub) pair as asserted through one trust anchor (the key set that
/// verified the launch), an opaque id for the vendors.
///
/// A registration that shares another's issuer but not its key set (a self-hosted Canvas keeping
/// `https://canvas.instructure.com`) could otherwise assert the other platform's users — their labs, their SkyPrep
/// accounts. Keyed by the trust anchor too, its learners are other learners.
enum Learners {
    /// The learner of `launch`, stored or updated (names and email as the LMS sends them now).
    ///
    /// A learner this instance stored or read within ``lastSeenResolution``, with the same names and email, is taken
    /// from `recent` and not written again: a repeated launch costs no database round trip.
    static func upsert(
        _ launch: ValidatedLaunch, store: any IdentityStore, recent: RecentLearners, now: Date
    ) async throws -> LearnerIdentity {
        let learner = try await resolve(launch, store: store, recent: recent, now: now)
        guard learner.needsStoring else { return learner.identity }
        let stored = try await store.upsertIdentity(learner.identity)
        recent.remember(stored, key: learner.key)
        return stored
    }

    /// The learner of `launch` as the LMS asserts them now, and whether that must be stored: not when they were stored
    /// within ``lastSeenResolution`` with the same names and email. Known to this instance lately, they are taken from
    /// `recent`; otherwise they are read, so that a learner keeps the id stored for them (learners stored before trust
    /// anchors have ids of the rule before). The caller stores them when needed (alone, or with the launch's record)
    /// and then calls ``LearnerResolution/stored(in:)``.
    static func resolve(
        _ launch: ValidatedLaunch, store: any IdentityStore, recent: RecentLearners, now: Date
    ) async throws
        -> LearnerResolution
    {
        let token = launch.token
        let subject = token.subject ?? ""
        let anchor = trustAnchor(of: launch.registration)
        let issuer = launch.registration.issuer
        let key = issuer + "\u{0}" + anchor + "\u{0}" + subject
        func isCurrent(_ known: LearnerIdentity) -> Bool {
            known.givenName == token.givenName && known.familyName == token.familyName && known.email == token.email
                && now.timeIntervalSince(known.lastSeen) < lastSeenResolution
        }
        if let known = recent.identity(key), isCurrent(known) {
            return LearnerResolution(identity: known, key: key, needsStoring: false)
        }
        let stored = try await store.identity(issuer: issuer, trustAnchor: anchor, subject: subject)
        if let stored, isCurrent(stored) {
            recent.remember(stored, key: key)
            return LearnerResolution(identity: stored, key: key, needsStoring: false)
        }
        var identity =
            stored
            ?? LearnerIdentity(
                id: learnerID(issuer: issuer, trustAnchor: anchor, subject: subject), issuer: issuer, trustAnchor: anchor,
                subject: subject, givenName: nil, familyName: nil, email: nil, firstSeen: now, lastSeen: now)
        identity.givenName = token.givenName
        identity.familyName = token.familyName
        identity.email = token.email
        identity.lastSeen = now
        return LearnerResolution(identity: identity, key: key, needsStoring: true)
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

/// A launch's learner, and whether they still have to be stored.
struct LearnerResolution: Sendable {
    /// The learner as the launch asserts them: the stored id and first-seen time, the launch's names and email.
    let identity: LearnerIdentity
    /// Their key in ``RecentLearners``.
    let key: String
    let needsStoring: Bool

    /// Notes that the learner was stored, so that launches within the hour do not store them again.
    func stored(in recent: RecentLearners) {
        if needsStoring { recent.remember(identity, key: key) }
    }
}

/// The learners this instance stored lately, by (issuer, trust anchor, sub): a bounded map, emptied when full, so that
/// no flood of new learners can grow it. Another instance may have written newer names meanwhile; the next launch that
/// brings names other than these writes them again.
final class RecentLearners: Sendable {
    static let capacity = 10_000
    private let known = Mutex<[String: LearnerIdentity]>([:])

    init() {}

    func identity(_ key: String) -> LearnerIdentity? { known.withLock { $0[key] } }

    func remember(_ identity: LearnerIdentity, key: String) {
        known.withLock { known in
            if known.count >= Self.capacity { known = [:] }
            known[key] = identity
        }
    }
}
