import Crypto
import Foundation
import GatewayStorage
import LTICore
import Logging
import PlatformServices

/// What a dynamic registration came to, for the page the LMS administrator sees.
enum RegistrationOutcome: Sendable {
    /// Stored: a new platform or the same one updated; `pending` when it waits for an operator's approval.
    case registered(PlatformRegistration, updated: Bool, pending: Bool)
    /// Refused, nothing stored; `message` is safe to show (the platform's own words included).
    case refused(status: Int, message: String)
}

/// LTI Dynamic Registration (lti-advantage.md §2) through an operator's one-time invitation: reads the platform's
/// OpenID configuration, posts the tool's registration, and stores what the platform answered — the invitation used
/// in the same transaction, so a registration is stored whole or not at all.
///
/// - Important: The configuration URL comes from whoever opens the link; without a valid, unused, unexpired invitation
///   nothing is fetched, and every URL is checked (https; http only on loopback) before it is called.
struct DynamicRegistration: Sendable {
    let store: any RegistrationStore & RegistrationInviteStore & AuditStore
    let client: RegistrationClient
    let tool: ToolConfiguration
    let requireApproval: Bool
    let now: @Sendable () -> Date
    let audit: @Sendable (_ action: String, _ target: String) async -> Void
    /// Attempts one invitation allows (a leaked link cannot be used to probe without end).
    var attemptsPerInvite = 10

    static func digest(_ token: String) -> String { Hex.encode(SHA256.hash(data: Data(token.utf8))) }

    func register(invite token: String?, configurationURL: String?, registrationToken: String?, logger: Logger) async -> RegistrationOutcome {
        guard let token, token.count <= 128, let invite = try? await store.invite(tokenDigest: Self.digest(token)) else {
            return .refused(status: 403, message: "This registration link is not valid. Ask the gateway's operator for a new one.")
        }
        guard invite.usedAt == nil else {
            return .refused(status: 403, message: "This registration link was used already. Ask the gateway's operator for a new one.")
        }
        guard invite.expiresAt > now() else {
            return .refused(status: 403, message: "This registration link has expired. Ask the gateway's operator for a new one.")
        }
        guard let configurationURL, !configurationURL.isEmpty else {
            return .refused(
                status: 400,
                message: "Open this link from your LMS's LTI Advantage registration (it adds the openid_configuration parameter).")
        }
        guard (try? await store.countInviteAttempt(tokenDigest: invite.tokenDigest, now: now(), limit: attemptsPerInvite)) == true else {
            return .refused(status: 403, message: "This registration link has been tried too often. Ask the gateway's operator for a new one.")
        }
        let via = "invitation \(invite.id)" + (invite.note.map { " (\($0))" } ?? "")
        do {
            let configuration = try await client.configuration(at: configurationURL, token: registrationToken)
            let registered = try await client.register(
                tool.dynamicRegistration(), at: configuration, token: registrationToken)
            guard let deployment = registered.deploymentID else {
                throw RegistrationError("The platform's answer names no deployment id.")
            }
            let registration = PlatformRegistration(
                id: "plt_" + SecureRandom.token(byteCount: 9), issuer: configuration.issuer, clientID: registered.clientID,
                authURL: configuration.authorizationEndpoint, tokenURL: configuration.tokenEndpoint, jwksURL: configuration.jwksURI,
                deploymentIDs: [deployment], createdAt: now(), origin: "dynamic", approved: !requireApproval, grantedScopes: registered.scopes)
            switch try await store.completeDynamicRegistration(registration, inviteDigest: invite.tokenDigest, now: now()) {
            case .inviteUnusable:
                return .refused(status: 403, message: "This registration link was used meanwhile. Ask the gateway's operator for a new one.")
            case .registeredByHand(let id):
                return .refused(
                    status: 409,
                    message:
                        "This platform (issuer and client id) was registered by the gateway's operator (\(id)); a registration link does not change it. Ask the operator."
                )
            case .created(let id):
                await audit("platform.register", "\(id) by \(via)")
                logger.info("platform registered dynamically", metadata: ["lti.registration": "\(id)", "lti.iss": "\(registration.issuer)"])
                return .registered(registration, updated: false, pending: requireApproval)
            case .updated(let id):
                await audit("platform.register", "\(id) again by \(via)")
                var stored = (try? await store.registration(id: id)) ?? registration
                stored.id = id
                logger.info("platform registered again", metadata: ["lti.registration": "\(id)", "lti.iss": "\(registration.issuer)"])
                return .registered(stored, updated: true, pending: !stored.approved)
            }
        } catch let error as RegistrationError {
            logger.notice("dynamic registration refused", metadata: ["gw.error": "registration_refused", "error": "\(error.message)"])
            return .refused(status: 502, message: error.message)
        } catch {
            logger.error("dynamic registration not stored", metadata: ["error": "\(error)"])
            return .refused(status: 503, message: "The registration could not be stored. Please try again in a minute.")
        }
    }
}

extension ToolConfiguration {
    /// The tool's client registration (lti-advantage.md §2): both message types, the deep-linking target, the claims
    /// and scopes the gateway uses, and Canvas's privacy level and placements.
    func dynamicRegistration() -> [String: any Sendable] {
        var toolConfiguration: [String: any Sendable] = [
            "domain": host, "target_link_uri": launchURL, "custom_parameters": [String: String](),
            "claims": ["iss", "sub", "name", "given_name", "family_name", "email", "locale"],
            "messages": [
                ["type": "LtiResourceLinkRequest", "target_link_uri": launchURL],
                [
                    "type": "LtiDeepLinkingRequest", "target_link_uri": deepLinkingURL,
                    "placements": ["link_selection", "assignment_selection", "ContentArea"], "label": "Skillable labs",
                ] as [String: any Sendable],
            ] as [any Sendable],
            "description": "Hands-on Skillable labs launched from the course.",
        ]
        toolConfiguration["https://canvas.instructure.com/lti/privacy_level"] = "public"
        return [
            "application_type": "web", "response_types": ["id_token"], "grant_types": ["implicit", "client_credentials"],
            "initiate_login_uri": loginURL, "redirect_uris": [launchURL, deepLinkingURL], "client_name": "LTI Gateway (Skillable labs)",
            "jwks_uri": jwksURL, "token_endpoint_auth_method": "private_key_jwt",
            "scope": AGSScope.requested.joined(separator: " "),
            "https://purl.imsglobal.org/spec/lti-tool-configuration": toolConfiguration,
        ]
    }
}
