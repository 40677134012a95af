import GatewaySupport
import LTICore

/// The tool's signing keys: where they are kept, their size, and the pace of their rotation.
public struct KeySettings: SettingsArea {
    /// Signing keys folder (SQLite deployments; PostgreSQL keeps them sealed in the database).
    public var directory = "keys"
    /// RSA size of new signing keys.
    public var keyBits = 2048
    /// How long a rotated-out key stays published.
    public var retiringGrace = Duration.seconds(7 * 86_400)
    /// `Cache-Control: max-age` of the tool's JWKS.
    public var jwksMaxAge = Duration.seconds(3600)
    /// How long `next` must be published before `keys rotate` promotes it.
    public var minimumNextAge = Duration.seconds(7200)
    /// How often a running server looks for a rotation done elsewhere.
    public var reloadInterval = Duration.seconds(15)

    public init() {}

    public static let settings: [Setting<Self>] = [
        .text("GATEWAY_KEYS_DIR", \.directory, "signing keys folder"),
        .integer(
            "GATEWAY_KEY_BITS", \.keyBits, "RSA size of new signing keys (2048, 3072, 4096)", isAllowed: { [2048, 3072, 4096].contains($0) },
            rule: "2048, 3072 or 4096"),
        .duration("GATEWAY_KEY_GRACE_DAYS", \.retiringGrace, "how long a rotated-out key stays published", unit: .days, range: 0...365),
        .duration("GATEWAY_JWKS_MAX_AGE_SECONDS", \.jwksMaxAge, "`Cache-Control: max-age` of the tool's JWKS", range: 0...86_400),
        .duration(
            "GATEWAY_KEY_MIN_NEXT_AGE_SECONDS", \.minimumNextAge,
            "how long `next` must be published before `keys rotate` promotes it (must exceed the JWKS max-age)", range: 0...(30 * 86_400)),
        .duration(
            "GATEWAY_KEY_RELOAD_SECONDS", \.reloadInterval, "how often a running gateway picks up a rotation done by the CLI (0.1–60)",
            range: 0.1...60),
    ]

    public func validateTogether() throws {
        guard jwksMaxAge < minimumNextAge else {
            throw SettingsError(
                message:
                    "GATEWAY_JWKS_MAX_AGE_SECONDS must be shorter than GATEWAY_KEY_MIN_NEXT_AGE_SECONDS, so platforms see a next key before it signs")
        }
    }

    /// The key management policy these settings describe.
    public var policy: KeyPolicy {
        KeyPolicy(
            keyBits: keyBits, retiringGrace: retiringGrace.totalSeconds, jwksMaxAge: Int(jwksMaxAge.totalSeconds),
            minimumNextAge: minimumNextAge.totalSeconds)
    }
}
