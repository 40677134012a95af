import Foundation

/// Finds platform registrations (checklist "Login" rule 2). Implemented by the storage backends.
public protocol RegistrationLookup: Sendable {
    /// Every registration whose issuer is exactly `issuer`.
    func registrations(issuer: String) async throws -> [PlatformRegistration]
    /// The registration with this id, if any.
    func registration(id: String) async throws -> PlatformRegistration?
}

/// Keeps one-time login states (checklist "Launch" rules 1 and 8: a nonce is accepted only with the state it is bound
/// to, so consuming the state consumes the nonce).
public protocol LoginStateStore: Sendable {
    func saveLoginState(_ state: LoginState) async throws
    /// Removes and returns the state if it exists and has not expired at `now`.
    ///
    /// - Important: Atomic: of two racing calls with the same state, at most one gets a value.
    func consumeLoginState(_ state: String, now: Date) async throws -> LoginState?
    /// The state if it exists and has not expired at `now`, left in place (reading changes nothing).
    func loginState(_ state: String, now: Date) async throws -> LoginState?
    /// The unexpired login whose ``LoginState/restartKey`` is `restartKey`, left in place.
    func loginState(restartKey: String, now: Date) async throws -> LoginState?
    /// Gives the unexpired login `state` the restart key `key` unless it has one already; the key it has then, or
    /// nil when there is no such login. (Most logins never need a restart key, so they are saved without one.)
    func assignRestartKey(_ key: String, toState state: String, now: Date) async throws -> String?
}

/// Gives the platform's RS256 public key for a `kid`, from that platform's JWKS only.
public protocol PlatformKeyProvider: Sendable {
    /// The key with `kid` in the key set at `jwksURL`, re-fetching the set at most once (rate-limited)
    /// when the kid is unknown; `nil` when the kid is still unknown after that.
    func key(kid: String, jwksURL: String) async throws -> PlatformPublicKey?
}
