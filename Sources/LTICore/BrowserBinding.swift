import Crypto
import Foundation

/// How a launch shows that it comes back to the browser that started its login (checklist "Launch" rule 1).
///
/// Inside an LMS frame, browsers that block third-party cookies drop the state cookie; LTI Platform
/// Storage (1EdTech Client Side postMessages) lets the login keep a per-login secret in the platform's
/// own window instead, which the launch reads back (`reference/lti-advantage.md` §1).
public enum BrowserBinding: Sendable, Equatable {
    /// The value of the login's state cookie; `partitioned` when it came in the `Partitioned` (CHIPS) cookie.
    case cookie(String, partitioned: Bool)
    /// The per-login secret read back from the platform's storage with `lti.get_data`.
    case platformStorage(secret: String)
    /// Nothing ties the launch to a browser.
    case none
}

/// The channel a launch was tied to its browser through, as counted for operators.
public enum BrowserBindingChannel: String, Sendable, CaseIterable {
    /// The state cookie, as a first-party or allowed third-party cookie.
    case cookie
    /// The partitioned (CHIPS) state cookie, kept inside the LMS frame where third-party cookies are blocked.
    case partitionedCookie = "partitioned_cookie"
    /// LTI Platform Storage.
    case platformStorage = "storage"
    /// A login started again in a new top-level window, where first-party cookies work.
    case newWindow = "new_window"
}

/// The per-login secret kept in the platform's storage, and the key it is kept under.
public enum PlatformStorageSecret {
    /// Longest secret accepted back from a browser (a real one is 43 characters).
    public static let maxLength = 256

    /// A fresh secret: 256 bits from the CSPRNG, base64url.
    public static func make() -> String { SecureRandom.token() }

    /// What the gateway stores instead of the secret: SHA-256, hex.
    public static func digest(_ secret: String) -> String {
        Hex.encode(SHA256.hash(data: Data(secret.utf8)))
    }

    /// The platform-storage key of the login with `state`: derived from the state, so the state itself is
    /// never handed to the platform's storage, and distinct per login.
    public static func key(forState state: String) -> String {
        "lti_gateway_" + Hex.encode(SHA256.hash(data: Data(("platform-storage-key:" + state).utf8)).prefix(16))
    }
}
