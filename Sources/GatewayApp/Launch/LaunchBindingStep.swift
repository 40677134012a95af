import Foundation
import LTICore

/// What the launch endpoint does with a posted launch before validating it: which evidence ties it to the
/// browser that started its login (checklist "Launch" rule 1), or how to get that evidence.
enum LaunchBindingStep: Equatable {
    /// Validate the launch with this binding (`.none` is refused by the validator).
    case validate(BrowserBinding)
    /// No cookie came back, but the login kept a secret in the platform's storage: answer a page that reads
    /// it back with `lti.get_data` and posts the launch again with it.
    case readPlatformStorage(key: String, frame: String, registrationID: String)
    /// Neither a cookie nor platform storage ties the launch to this browser, but its login is known:
    /// refuse it, offering to start that login again in a new window.
    case offerNewWindow(restartKey: String, registrationID: String)
}

/// What the browser sent that may tie a launch to its login.
struct LaunchBindingEvidence {
    /// The value of the login's state cookie, and whether it was the partitioned one.
    var cookie: (value: String, partitioned: Bool)?
    /// The secret the storage page read back (`lti_storage_secret`).
    var storageSecret: String?
    /// Set when the storage page could not read the secret (`lti_storage_error`).
    var storageFailed: Bool
    /// Whether the post comes from the gateway's own page (same origin), where a storage secret must come from.
    var postedByGatewayPage: Bool
}

/// Chooses the ``LaunchBindingStep`` of a launch post.
///
/// - Important: Reads at most one login state and changes nothing but, when it offers the new window, the
///   login's restart key (given then, not at every login); the launch validator still checks the binding
///   (constant time) and consumes the state.
struct LaunchBindingResolver: Sendable {
    let states: any LoginStateStore

    /// Longest state looked up in the store; longer ones are never ours.
    static let maxStateLength = 512

    func step(state: String?, evidence: LaunchBindingEvidence, now: Date) async throws -> LaunchBindingStep {
        if let cookie = evidence.cookie { return .validate(.cookie(cookie.value, partitioned: cookie.partitioned)) }
        if let secret = evidence.storageSecret {
            // Checklist "Launch" rule 1: only the gateway's own storage page relays a secret; from any other
            // site it would let someone else's launch finish in this browser.
            guard evidence.postedByGatewayPage else {
                throw LaunchRefusal(.storageSecretForeign, "This launch's browser secret was posted from another site.", rule: "Launch 1")
            }
            return .validate(.platformStorage(secret: secret))
        }
        guard let state, !state.isEmpty, state.utf8.count <= Self.maxStateLength,
            let pending = try await states.loginState(state, now: now)
        else {
            return .validate(.none)
        }
        if !evidence.storageFailed, pending.storageSecretDigest != nil {
            return .readPlatformStorage(
                key: PlatformStorageSecret.key(forState: state), frame: pending.storageFrame ?? "_parent",
                registrationID: pending.registrationID)
        }
        if let restartKey = pending.restartKey { return .offerNewWindow(restartKey: restartKey, registrationID: pending.registrationID) }
        guard let restartKey = try await states.assignRestartKey(SecureRandom.token(byteCount: 16), toState: state, now: now) else {
            return .validate(.none)  // used or expired meanwhile
        }
        return .offerNewWindow(restartKey: restartKey, registrationID: pending.registrationID)
    }
}
